/**
 * PostgreSQL EventStore. An append is ONE statement (one round trip, atomic): data-modifying CTEs insert the
 * events, their outbox rows, upsert the `orders` projection row and complete the idempotency record.
 * The version guard is twofold: the statement inserts nothing unless the stream is at `expectedVersion`,
 * and UNIQUE(stream_id, version) stops two concurrent appends that both saw the same version.
 */
import { SqlClient, type SqlError } from "@effect/sql"
import { Effect, Layer } from "effect"
import type { Order, OrderId } from "../domain/Order.js"
import { Money } from "../domain/Money.js"
import { decodeEvent, encodeEvent } from "./EventCodec.js"
import { ConcurrencyConflict, EventStore, type RecordedEvent } from "./EventStore.js"

const isUniqueViolation = (error: SqlError.SqlError): boolean =>
  (error.cause as { code?: unknown } | undefined)?.code === "23505"

export interface EventRow {
  readonly position: string
  readonly stream_id: string
  readonly version: number
  readonly type: string
  readonly schema_version: number
  readonly data: unknown
  readonly metadata: Record<string, string>
  readonly recorded_at: Date
}

export const toRecordedEvent = (row: EventRow): RecordedEvent => ({
  position: BigInt(row.position),
  streamId: row.stream_id as OrderId,
  version: row.version,
  schemaVersion: row.schema_version,
  event: decodeEvent(row.type, row.schema_version, row.data),
  metadata: row.metadata,
  recordedAt: row.recorded_at
})

/** Column values of the `orders` projection row for an order state. */
export const orderRowValues = (order: Order) => ({
  order_id: order.orderId,
  user_id: order.userId,
  amount_minor: order.amount.minor.toString(),
  currency: order.amount.currency,
  status: order.status,
  payment_id: order.paymentId,
  reason: order.reason,
  version: order.version,
  created_at: order.createdAt,
  updated_at: order.updatedAt
})

export interface OrderRow {
  readonly order_id: string
  readonly user_id: string
  readonly amount_minor: string
  readonly currency: string
  readonly status: string
  readonly payment_id: string | null
  readonly reason: string | null
  readonly version: number
  readonly created_at: Date
  readonly updated_at: Date
}

export const orderFromRow = (row: OrderRow): Order => ({
  orderId: row.order_id as Order["orderId"],
  userId: row.user_id as Order["userId"],
  amount: new Money({ minor: BigInt(row.amount_minor), currency: row.currency as Money["currency"] }, { disableValidation: true }),
  status: row.status as Order["status"],
  paymentId: row.payment_id as Order["paymentId"],
  reason: row.reason,
  version: row.version,
  createdAt: row.created_at,
  updatedAt: row.updated_at
})

export const PgEventStore = Layer.effect(
  EventStore,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const conflictOrDuplicate = (streamId: OrderId, expectedVersion: number, eventIds: ReadonlyArray<string>) =>
      sql<{ current: number; duplicates: number }>`
        SELECT (SELECT coalesce(max(version), 0) FROM events WHERE stream_id = ${streamId})::int AS current,
               (SELECT count(*) FROM events WHERE event_id = ANY(${eventIds}::uuid[]))::int AS duplicates`.pipe(
        Effect.orDie,
        Effect.flatMap(([row]) =>
          row!.duplicates === eventIds.length
            ? Effect.succeed({ version: row!.current, duplicate: true })
            : Effect.fail(new ConcurrencyConflict({ streamId, expectedVersion, actualVersion: row!.current }))
        )
      )

    return EventStore.of({
      append: Effect.fnUntraced(function*(request) {
        const { events, expectedVersion, streamId } = request
        const encoded = events.map(encodeEvent)
        const ids = events.map((e) => e.eventId)
        const row = orderRowValues(request.state)
        const idem = request.idempotency
        const result = yield* sql<{ current: number; duplicates: number; inserted: number }>`
          WITH cur AS (SELECT coalesce(max(version), 0)::int AS v FROM events WHERE stream_id = ${streamId}),
          dup AS (SELECT count(*)::int AS n FROM events WHERE event_id = ANY(${ids}::uuid[])),
          ins AS (
            INSERT INTO events (stream_id, version, event_id, type, schema_version, data, metadata)
            SELECT ${streamId}, ${expectedVersion}::int + e.ord::int, e.event_id, e.type, e.schema_version, e.data::jsonb,
                   ${JSON.stringify(request.metadata)}::jsonb
            FROM unnest(${ids}::uuid[], ${encoded.map((e) => e.type)}::text[],
                        ${encoded.map((e) => e.schemaVersion)}::smallint[],
                        ${encoded.map((e) => JSON.stringify(e.data))}::text[])
                   WITH ORDINALITY AS e(event_id, type, schema_version, data, ord),
                 cur, dup
            WHERE cur.v = ${expectedVersion} AND dup.n = 0
            RETURNING position, stream_id
          ),
          ob AS (INSERT INTO outbox (position, stream_id) SELECT position, stream_id FROM ins),
          proj AS (
            INSERT INTO orders (order_id, user_id, amount_minor, currency, status, payment_id, reason, version,
                                created_at, updated_at)
            SELECT ${row.order_id}, ${row.user_id}, ${row.amount_minor}::bigint, ${row.currency}, ${row.status},
                   ${row.payment_id}::uuid, ${row.reason}, ${row.version}, ${row.created_at}, ${row.updated_at}
            WHERE EXISTS (SELECT 1 FROM ins)
            ON CONFLICT (order_id) DO UPDATE SET
              status = EXCLUDED.status, payment_id = EXCLUDED.payment_id, reason = EXCLUDED.reason,
              version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
            WHERE orders.version < EXCLUDED.version
          ),
          idem AS (
            UPDATE idempotency_keys
               SET status = 'completed', response_status = ${idem?.status ?? null}::smallint,
                   response_body = ${idem ? JSON.stringify(idem.body) : null}::jsonb
             WHERE key = ${idem?.key ?? null} AND EXISTS (SELECT 1 FROM ins)
          ),
          inb AS (
            INSERT INTO inbox (consumer, message_id)
            SELECT ${request.inbox?.consumer ?? null}, ${request.inbox?.messageId ?? null}::uuid
            WHERE ${request.inbox !== undefined} AND EXISTS (SELECT 1 FROM ins)
            ON CONFLICT DO NOTHING
          )
          SELECT cur.v AS current, dup.n AS duplicates, (SELECT count(*) FROM ins)::int AS inserted FROM cur, dup`.pipe(
          Effect.map((rows) => rows[0]!),
          Effect.catchIf(isUniqueViolation, () => Effect.succeed(undefined)),
          Effect.orDie
        )
        if (result === undefined) return yield* conflictOrDuplicate(streamId, expectedVersion, ids)
        if (result.inserted > 0) return { version: expectedVersion + result.inserted, duplicate: false }
        if (result.duplicates === ids.length) return { version: result.current, duplicate: true }
        return yield* new ConcurrencyConflict({ streamId, expectedVersion, actualVersion: result.current })
      }),

      readStream: (streamId) =>
        sql<EventRow>`
          SELECT position::text AS position, stream_id, version, type, schema_version, data, metadata, recorded_at
          FROM events WHERE stream_id = ${streamId} ORDER BY version`.pipe(
          Effect.map((rows) => rows.map(toRecordedEvent)),
          Effect.orDie
        )
    })
  })
)
