/**
 * Webhook endpoints and their deliveries, as the operator sees them (the admin API and the CLI): register,
 * list, enable/disable, rotate the secret (the old one keeps signing beside the new one for the overlap), list an
 * endpoint's deliveries, replay one or all since a time. The notifier (Notifier.ts) writes the deliveries and
 * the dispatcher (Dispatcher.ts) makes them; this module only reads them and puts them back in line.
 */
import { SqlClient } from "@effect/sql"
import { Data, Effect, Option } from "effect"
import { uuidv7 } from "../Ids.js"
import { orStoreError, type StoreError } from "../Infrastructure.js"
import { webhookEventTypes } from "./EventTypes.js"
import { newSecret } from "./Signature.js"
import { AllowPrivateUrls, checkEndpointUrl } from "./UrlSafety.js"

/** A registration the API refuses (→ 422): a URL that is not allowed, an unknown event type. */
export class WebhookRejected extends Data.TaggedError("WebhookRejected")<{ readonly message: string }> {}

export interface EndpointView {
  readonly id: string
  readonly url: string
  /** null: every event type */
  readonly eventTypes: ReadonlyArray<string> | null
  readonly description: string | null
  readonly status: "enabled" | "disabled"
  readonly disabledReason: string | null
  /** the previous secret signs beside the current one until then (after a rotation) */
  readonly previousSecretUntil: string | null
  readonly failingSince: string | null
  readonly createdAt: string
  readonly updatedAt: string
}

export type DeliveryStatus = "pending" | "delivered" | "failed"

export interface DeliveryView {
  readonly id: string
  readonly endpointId: string
  readonly eventId: string
  readonly orderId: string
  readonly version: number
  readonly type: string
  readonly status: DeliveryStatus
  readonly attempts: number
  readonly nextAttemptAt: string | null
  readonly lastAttemptAt: string | null
  readonly lastStatus: number | null
  readonly lastError: string | null
  readonly deliveredAt: string | null
  readonly createdAt: string
}

interface EndpointRow {
  id: string
  url: string
  event_types: Array<string> | null
  description: string | null
  status: "enabled" | "disabled"
  disabled_reason: string | null
  previous_secret_until: Date | null
  failing_since: Date | null
  created_at: Date
  updated_at: Date
}

interface DeliveryRow {
  id: string
  endpoint_id: string
  event_id: string
  order_id: string
  version: number
  event_type: string
  status: DeliveryStatus
  attempts: number
  next_attempt_at: Date
  last_attempt_at: Date | null
  last_status: number | null
  last_error: string | null
  delivered_at: Date | null
  created_at: Date
  cursor: string
}

const iso = (d: Date | null) => d === null ? null : new Date(d).toISOString()

const endpointView = (r: EndpointRow): EndpointView => ({
  id: r.id,
  url: r.url,
  eventTypes: r.event_types,
  description: r.description,
  status: r.status,
  disabledReason: r.disabled_reason,
  previousSecretUntil: r.previous_secret_until !== null && new Date(r.previous_secret_until).getTime() > Date.now()
    ? iso(r.previous_secret_until)
    : null,
  failingSince: iso(r.failing_since),
  createdAt: iso(r.created_at)!,
  updatedAt: iso(r.updated_at)!
})

export const deliveryView = (r: DeliveryRow): DeliveryView => ({
  id: r.id,
  endpointId: r.endpoint_id,
  eventId: r.event_id,
  orderId: r.order_id,
  version: r.version,
  type: r.event_type,
  status: r.status,
  attempts: r.attempts,
  nextAttemptAt: r.status === "pending" ? iso(r.next_attempt_at) : null,
  lastAttemptAt: iso(r.last_attempt_at),
  lastStatus: r.last_status,
  lastError: r.last_error,
  deliveredAt: iso(r.delivered_at),
  createdAt: iso(r.created_at)!
})

const ENDPOINT_COLUMNS = "id, url, event_types, description, status, disabled_reason, previous_secret_until, failing_since, created_at, updated_at"
const DELIVERY_COLUMNS =
  "id, endpoint_id, event_id, order_id, version, event_type, status, attempts, next_attempt_at, last_attempt_at, last_status, last_error, delivered_at, created_at"

/** An opaque page cursor: the last row's (created_at, id). */
const encodeCursor = (createdAt: string, id: string) => Buffer.from(`${createdAt}|${id}`).toString("base64url")
/** created_at as PostgreSQL prints it (`2026-12-01 10:00:00.123456+00`), and only a time it takes back: what
 * Date.parse accepts is wider ("1", "2026-02-31 …"), and a cast that fails would be a 500. */
const PG_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.\d{1,6})?[+-](\d{2})(?::(\d{2}))?$/
const isPgTimestamp = (text: string): boolean => {
  const m = PG_TIMESTAMP.exec(text)
  if (m === null) return false
  const [year, month, day, hour, minute, second, offsetHours, offsetMinutes] = m.slice(1).map((n) => Number(n ?? 0)) as
    [number, number, number, number, number, number, number, number]
  const date = new Date(Date.UTC(year, month - 1, day))
  return year >= 1970 && year <= 9999 && date.getUTCMonth() === month - 1 && date.getUTCDate() === day &&
    hour <= 23 && minute <= 59 && second <= 59 && offsetHours <= 15 && offsetMinutes <= 59
}
const decodeCursor = (cursor: string): Option.Option<{ at: string; id: string }> => {
  const [at, id] = Buffer.from(cursor, "base64url").toString("utf8").split("|")
  return at !== undefined && id !== undefined && isPgTimestamp(at) &&
      /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)
    ? Option.some({ at, id })
    : Option.none()
}

/** How long a rotated-out secret keeps signing (Standard Webhooks / Svix: 24 h). */
export const ROTATION_OVERLAP_MS = 24 * 3600_000

export class WebhookEndpoints extends Effect.Service<WebhookEndpoints>()("WebhookEndpoints", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { allow } = yield* Effect.orDie(AllowPrivateUrls)

    const create = (input: { readonly url: string; readonly eventTypes?: ReadonlyArray<string> | undefined; readonly description?: string | undefined }):
      Effect.Effect<{ readonly endpoint: EndpointView; readonly secret: string }, WebhookRejected | StoreError> =>
      Effect.gen(function*() {
        const checked = checkEndpointUrl(input.url, allow)
        if (!checked.ok) return yield* new WebhookRejected({ message: `url: ${checked.reason}` })
        const unknown = (input.eventTypes ?? []).filter((t) => !webhookEventTypes.includes(t))
        if (unknown.length > 0) {
          return yield* new WebhookRejected({ message: `unknown event types: ${unknown.join(", ")} (known: ${webhookEventTypes.join(", ")})` })
        }
        const types = input.eventTypes === undefined ? null : [...new Set(input.eventTypes)]
        const secret = newSecret()
        const [row] = yield* sql<EndpointRow>`
          INSERT INTO webhook_endpoints (id, url, event_types, description, secret)
          VALUES (${uuidv7()}, ${checked.url}, ${types}::text[], ${input.description ?? null}, ${secret})
          RETURNING ${sql.unsafe(ENDPOINT_COLUMNS)}`.pipe(orStoreError)
        yield* Effect.logInfo("webhook endpoint registered").pipe(
          Effect.annotateLogs({ type: "WEBHOOK_ENDPOINT_CREATED", endpointId: row!.id, url: checked.url, eventTypes: types ?? "all" })
        )
        return { endpoint: endpointView(row!), secret }
      })

    const list: Effect.Effect<ReadonlyArray<EndpointView>, StoreError> = sql<EndpointRow>`
      SELECT ${sql.unsafe(ENDPOINT_COLUMNS)} FROM webhook_endpoints ORDER BY created_at, id`.pipe(
      Effect.map((rows) => rows.map(endpointView)),
      orStoreError
    )

    const get = (id: string): Effect.Effect<Option.Option<EndpointView>, StoreError> =>
      sql<EndpointRow>`SELECT ${sql.unsafe(ENDPOINT_COLUMNS)} FROM webhook_endpoints WHERE id = ${id}`.pipe(
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), endpointView)),
        orStoreError
      )

    /** Enable (clears the reason and the failing run) or disable by an operator. */
    const setEnabled = (id: string, enabled: boolean): Effect.Effect<Option.Option<EndpointView>, StoreError> =>
      sql<EndpointRow>`
        UPDATE webhook_endpoints
        SET status = ${enabled ? "enabled" : "disabled"}, disabled_reason = ${enabled ? null : "disabled by an operator"},
            failing_since = CASE WHEN ${enabled} THEN NULL ELSE failing_since END, updated_at = now()
        WHERE id = ${id}
        RETURNING ${sql.unsafe(ENDPOINT_COLUMNS)}`.pipe(
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), endpointView)),
        orStoreError,
        Effect.tap((found) =>
          Option.isSome(found)
            ? Effect.logInfo(enabled ? "webhook endpoint enabled" : "webhook endpoint disabled").pipe(
              Effect.annotateLogs({ type: enabled ? "WEBHOOK_ENDPOINT_ENABLED" : "WEBHOOK_ENDPOINT_DISABLED", endpointId: id, reason: "operator" })
            )
            : Effect.void
        )
      )

    const rotateSecret = (id: string): Effect.Effect<Option.Option<{ readonly endpoint: EndpointView; readonly secret: string }>, StoreError> => {
      const secret = newSecret()
      return sql<EndpointRow>`
        UPDATE webhook_endpoints
        SET previous_secret = secret, previous_secret_until = now() + ${ROTATION_OVERLAP_MS} * interval '1 millisecond',
            secret = ${secret}, updated_at = now()
        WHERE id = ${id}
        RETURNING ${sql.unsafe(ENDPOINT_COLUMNS)}`.pipe(
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), (row) => ({ endpoint: endpointView(row), secret }))),
        orStoreError,
        Effect.tap((found) =>
          Option.isSome(found)
            ? Effect.logInfo("webhook endpoint secret rotated").pipe(Effect.annotateLogs({ type: "WEBHOOK_SECRET_ROTATED", endpointId: id }))
            : Effect.void
        )
      )
    }

    /** An endpoint's deliveries, newest first, a page at a time (None: no such endpoint). */
    const deliveries = (
      endpointId: string,
      query: { readonly status?: DeliveryStatus | undefined; readonly limit?: number | undefined; readonly cursor?: string | undefined }
    ): Effect.Effect<Option.Option<{ readonly deliveries: ReadonlyArray<DeliveryView>; readonly nextCursor: string | null }>, WebhookRejected | StoreError> =>
      Effect.gen(function*() {
        if (Option.isNone(yield* get(endpointId))) return Option.none()
        const after = query.cursor === undefined ? Option.none() : decodeCursor(query.cursor)
        if (query.cursor !== undefined && Option.isNone(after)) return yield* new WebhookRejected({ message: "cursor: not a cursor this API gave" })
        const limit = query.limit ?? 100
        const rows = yield* sql<DeliveryRow>`
          SELECT ${sql.unsafe(DELIVERY_COLUMNS)}, created_at::text AS cursor FROM webhook_deliveries
          WHERE endpoint_id = ${endpointId}
            ${query.status === undefined ? sql`` : sql`AND status = ${query.status}`}
            ${Option.isSome(after) ? sql`AND (created_at, id) < (${after.value.at}::timestamptz, ${after.value.id}::uuid)` : sql``}
          ORDER BY created_at DESC, id DESC LIMIT ${limit + 1}`.pipe(orStoreError)
        const page = rows.slice(0, limit)
        const last = page[page.length - 1]
        return Option.some({
          deliveries: page.map(deliveryView),
          nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last.cursor, last.id) : null
        })
      })

    /** Put a delivery back in line, due now, its attempts starting again (any status). A delivery a notifier is
     * calling right now is left to that call (replaying it would send it twice at once): its view as it is. None:
     * no such delivery. */
    const replay = (deliveryId: string): Effect.Effect<Option.Option<DeliveryView>, StoreError> =>
      sql<DeliveryRow>`
        WITH u AS (
          UPDATE webhook_deliveries
          SET status = 'pending', attempts = 0, next_attempt_at = now(), leased_until = NULL, lease_token = NULL, delivered_at = NULL
          WHERE id = ${deliveryId} AND NOT (status = 'pending' AND leased_until IS NOT NULL AND leased_until > now())
          RETURNING ${sql.unsafe(DELIVERY_COLUMNS)}, created_at::text AS cursor)
        SELECT * FROM u
        UNION ALL
        SELECT ${sql.unsafe(DELIVERY_COLUMNS)}, created_at::text AS cursor FROM webhook_deliveries
        WHERE id = ${deliveryId} AND NOT EXISTS (SELECT 1 FROM u)`.pipe(
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), deliveryView)),
        orStoreError,
        Effect.tap((found) =>
          Option.isSome(found)
            ? Effect.logInfo("webhook delivery replayed").pipe(
              Effect.annotateLogs({ type: "WEBHOOK_REPLAYED", deliveryId, endpointId: found.value.endpointId })
            )
            : Effect.void
        )
      )

    /** Every delivered or failed delivery of an endpoint made since `since` back in line, due now; how many (None:
     * no such endpoint). Only deliveries that were written: events of a time the endpoint was disabled have none. */
    const replaySince = (endpointId: string, since: Date): Effect.Effect<Option.Option<number>, StoreError> =>
      Effect.gen(function*() {
        if (Option.isNone(yield* get(endpointId))) return Option.none()
        const rows = yield* sql<{ id: string }>`
          UPDATE webhook_deliveries
          SET status = 'pending', attempts = 0, next_attempt_at = now(), leased_until = NULL, lease_token = NULL, delivered_at = NULL
          WHERE endpoint_id = ${endpointId} AND created_at >= ${since} AND status <> 'pending'
          RETURNING id`.pipe(orStoreError)
        yield* Effect.logInfo("webhook deliveries replayed").pipe(
          Effect.annotateLogs({ type: "WEBHOOK_REPLAYED", endpointId, since: since.toISOString(), deliveries: rows.length })
        )
        return Option.some(rows.length)
      })

    return { create, list, get, setEnabled, rotateSecret, deliveries, replay, replaySince } as const
  })
}) {}

/** Retention: delete up to `limit` deliveries delivered more than `hours` ago (failed and pending ones stay: they
 * are the operator's to replay); how many. */
export const deleteDelivered = (sql: SqlClient.SqlClient) => (hours: number, limit: number) =>
  Effect.map(
    sql`DELETE FROM webhook_deliveries WHERE id IN (
          SELECT id FROM webhook_deliveries
          WHERE status = 'delivered' AND delivered_at < now() - ${hours} * interval '1 hour'
          ORDER BY delivered_at LIMIT ${limit} FOR UPDATE SKIP LOCKED)
        RETURNING id`,
    (rows) => rows.length
  )
