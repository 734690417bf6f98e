/**
 * The notifier's deliveries (issue 20, docs/ARCHITECTURE.md "Notifier"): makes the delivery rows the consumer
 * wrote (Notifier.ts), after their commit, as signed POSTs (Standard Webhooks v1.0.0).
 * - **Order**: for one (endpoint, order) a delivery is taken only when no pending delivery of a lower version is
 *   left (delivered or given up): `order.paid` never goes before that order's `order.placed`.
 * - **Isolation**: each endpoint's due deliveries are taken separately, at most WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT
 *   in flight per endpoint in a process (WEBHOOK_MAX_IN_FLIGHT in all): an endpoint that hangs holds its own
 *   slots until WEBHOOK_TIMEOUT_MS, never another endpoint's.
 * - **At least once**: a taken delivery is leased (the timeout + 10 s); a notifier that dies mid-call leaves the
 *   lease to expire and any notifier takes it again. The attempt is counted when taken.
 * - **Retries**: 2xx delivered; anything else (a status, a timeout, a refused connection, an unsafe address) is
 *   tried again after WEBHOOK_RETRY_SCHEDULE's next step (jittered; at least a 429/503's Retry-After), a row
 *   with a due time, never a sleep; once the schedule is spent it is `failed` (replayable). 410 fails it and
 *   disables the endpoint at once; an endpoint failing every delivery for WEBHOOK_DISABLE_AFTER is disabled.
 * Woken in-process when the consumer wrote deliveries or one finished, and every WEBHOOK_POLL_MS (retries that
 * came due, other processes' rows). Every outcome is a log line (WEBHOOK_DELIVERED / _RETRY / _FAILED / _REFUSED,
 * WEBHOOK_ENDPOINT_DISABLED) and a metric.
 */
import { SqlClient } from "@effect/sql"
import { Cause, Config, Duration, Effect, Either, Metric, Option, Schedule } from "effect"
import { request as httpRequest, Agent as HttpAgent } from "node:http"
import { request as httpsRequest, Agent as HttpsAgent } from "node:https"
import { readFileSync } from "node:fs"
import { isIP } from "node:net"
import { makeBatcher } from "../Batcher.js"
import { unnestRows } from "../database/UnnestRows.js"
import { orStoreError } from "../Infrastructure.js"
import { traced, withRemoteParent } from "../observability/Tracing.js"
import { parseDuration, parseSchedule } from "./Durations.js"
import { signatureHeader } from "./Signature.js"
import { type Address, AllowPrivateUrls, hostOf, resolveTarget, systemResolver, UnsafeAddress, WebhookResolver } from "./UrlSafety.js"
import { notifierErrors, webhookBacklog, webhookDeliveries, webhookEndpointsDisabled, webhookLatency } from "./WebhookMetrics.js"

const DEFAULT_SCHEDULE = "0,5s,5m,30m,2h,5h,10h,10h"

/** This program's version (package.json, beside src/ and dist/ alike), for the user-agent. */
const packageVersion = (): string => {
  try {
    return (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: string }).version ?? "unknown"
  } catch {
    return "unknown"
  }
}

export const DispatcherConfig = Config.all({
  timeoutMs: Config.integer("WEBHOOK_TIMEOUT_MS").pipe(Config.withDefault(15_000), Config.validate({ message: "WEBHOOK_TIMEOUT_MS: > 0", validation: (n) => n > 0 })),
  schedule: Config.string("WEBHOOK_RETRY_SCHEDULE").pipe(
    Config.withDefault(DEFAULT_SCHEDULE),
    Config.map((text) => parseSchedule(text) ?? []),
    Config.validate({ message: "WEBHOOK_RETRY_SCHEDULE: a comma list of durations such as 0,5s,5m", validation: (s) => s.length > 0 })
  ),
  disableAfterMs: Config.string("WEBHOOK_DISABLE_AFTER").pipe(Config.withDefault("5d"), Config.map((t) => parseDuration(t) ?? NaN), Config.validate({ message: "WEBHOOK_DISABLE_AFTER: a duration such as 5d", validation: (n) => Number.isFinite(n) })),
  perEndpoint: Config.integer("WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT").pipe(Config.withDefault(8), Config.validate({ message: "WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT: > 0", validation: (n) => n > 0 })),
  total: Config.integer("WEBHOOK_MAX_IN_FLIGHT").pipe(Config.withDefault(256), Config.validate({ message: "WEBHOOK_MAX_IN_FLIGHT: > 0", validation: (n) => n > 0 })),
  pollMs: Config.integer("WEBHOOK_POLL_MS").pipe(Config.withDefault(500), Config.validate({ message: "WEBHOOK_POLL_MS: > 0", validation: (n) => n > 0 })),
  userAgent: Config.succeed(`orders-es/${packageVersion()}`)
})
export type DispatcherConfig = Config.Config.Success<typeof DispatcherConfig>

export interface Claimed {
  id: string
  /** the lease this attempt holds: its outcome is recorded only while the lease is still this one */
  lease_token: string
  endpoint_id: string
  order_id: string
  version: number
  event_type: string
  body: string
  attempts: number
  event_recorded_at: Date
  traceparent: string | null
  tracestate: string | null
  url: string
  secret: string
  previous_secret: string | null
}

/** What one attempt got. */
export interface Answer {
  readonly status: number | null
  readonly retryAfterMs: number | null
  readonly error: string | null
}

const agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) }

/** `Retry-After` in seconds or as an HTTP date, as milliseconds from now (bounded to a day). */
export const retryAfterMs = (value: string | undefined): number | null => {
  if (value === undefined) return null
  const seconds = /^\s*\d+\s*$/.test(value) ? Number(value) * 1000 : Date.parse(value) - Date.now()
  return Number.isFinite(seconds) ? Math.min(Math.max(seconds, 0), 86_400_000) : null
}

/** At most this much of an answer's body is read (and thrown away); a longer one ends the connection. */
const MAX_ANSWER_BYTES = 64 * 1024

/**
 * One POST to the checked addresses (no redirects: node never follows them). The whole exchange — connection,
 * headers and the answer's body (read to its end, at most MAX_ANSWER_BYTES, so the connection can be reused) —
 * is bounded by `timeoutMs`: an endpoint that answers its status and then drips its body gets the connection
 * ended at the deadline, its status being its answer.
 */
const post = (url: URL, targets: ReadonlyArray<Address>, headers: Record<string, string>, body: string, timeoutMs: number) =>
  Effect.async<Answer>((resume) => {
    const https = url.protocol === "https:"
    const host = hostOf(url)
    let answered: Answer | undefined
    let settled = false
    const settle = (answer: Answer) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resume(Effect.succeed(answer))
    }
    const req = (https ? httpsRequest : httpRequest)({
      method: "POST",
      host,
      port: url.port === "" ? (https ? 443 : 80) : Number(url.port),
      path: `${url.pathname}${url.search}`,
      headers: { ...headers, "content-length": String(Buffer.byteLength(body)) },
      agent: https ? agents.https : agents.http,
      ...(https && isIP(host) === 0 ? { servername: host } : {}),
      // connect to the addresses that were checked, never to whatever the name resolves to now
      lookup: ((_hostname: string, options: { all?: boolean }, callback: (...args: Array<unknown>) => void) =>
        options?.all === true
          ? callback(null, targets.map((t) => ({ address: t.address, family: t.family })))
          : callback(null, targets[0]!.address, targets[0]!.family)) as never
    }, (res) => {
      const ra = res.headers["retry-after"]
      answered = { status: res.statusCode ?? 0, retryAfterMs: retryAfterMs(Array.isArray(ra) ? ra[0] : ra), error: null }
      let size = 0
      res.on("data", (chunk: Buffer) => {
        size += chunk.length
        if (size > MAX_ANSWER_BYTES) req.destroy()
      })
      res.on("end", () => settle(answered!))
      res.on("close", () => settle(answered!))
      res.on("error", () => settle(answered!))
    })
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
    req.on("error", (e) => settle(answered ?? { status: null, retryAfterMs: null, error: e.message }))
    req.end(body)
    return Effect.sync(() => {
      clearTimeout(timer)
      req.destroy()
    })
  })

/** The settings the delivery rows are handled by (the dispatcher's; a property drives them directly). */
export interface QueueSettings {
  readonly perEndpoint: number
  readonly leaseMs: number
  readonly schedule: ReadonlyArray<number>
  readonly disableAfterMs: number
}

/** The room a statement that leases deliveries may fill: per endpoint `perEndpoint` less what is in flight. */
export interface Lease {
  readonly perEndpoint: number
  readonly leaseMs: number
  /** calls in flight per endpoint */
  readonly busy: ReadonlyMap<string, number>
  /** calls that may start in all */
  readonly room: number
}

/**
 * Where leased deliveries go: `lease` runs a statement that leases deliveries to this process with the room
 * there is, one such statement at a time (so the in-flight bounds hold exactly), and starts what it leased.
 */
export interface Slots {
  readonly lease: <A, E, R>(statement: (lease: Lease) => Effect.Effect<readonly [A, ReadonlyArray<Claimed>], E, R>) => Effect.Effect<A, E, R>
}

/** No room: a statement given it leases nothing. */
export const leaseNone: Lease = { perEndpoint: 0, leaseMs: 0, busy: new Map(), room: 0 }

/** Slots that lease nothing (a queue without a dispatcher: its callers claim). */
export const noSlots: Slots = { lease: (statement) => Effect.map(statement(leaseNone), ([a]) => a) }

/** The calls in flight per endpoint as a relation `(endpoint_id, n)`, for a leasing statement's room. */
export const busyRelation = (sql: SqlClient.SqlClient, busy: ReadonlyMap<string, number>) => {
  const ids = [...busy.keys()]
  return sql`SELECT * FROM unnest(${ids}::uuid[], ${ids.map((id) => busy.get(id)!)}::int[]) AS b(endpoint_id, n)`
}

/** A claimed row as PostgreSQL's `to_jsonb` gives it. */
const claimedFromJson = (j: Claimed): Claimed => ({ ...j, event_recorded_at: new Date(j.event_recorded_at) })

/**
 * The delivery rows as a queue: `claim` takes due deliveries (each endpoint's share apart, never a version
 * while a lower one of its (endpoint, order) is pending) and leases them; `delivered` and `failedAttempt`
 * record an attempt's outcome (the next due time, or given up; the endpoint's failing run, its disabling).
 * No HTTP here: the dispatcher below makes the calls.
 */
export const makeDeliveryQueue = (config: QueueSettings, slots: Slots = noSlots) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const leaseMs = config.leaseMs
    /** Up to `limit` due deliveries, each endpoint's share apart, leased to this process. */
    const claim = (limit: number, inFlight: ReadonlyMap<string, number>) => {
      return sql<Claimed>`
        WITH busy AS (${busyRelation(sql, inFlight)}),
        picked AS (
          SELECT c.id FROM webhook_endpoints e
          LEFT JOIN busy b ON b.endpoint_id = e.id
          CROSS JOIN LATERAL (
            SELECT d.id, d.next_attempt_at FROM webhook_deliveries d
            WHERE d.endpoint_id = e.id AND d.status = 'pending' AND d.next_attempt_at <= now()
              AND (d.leased_until IS NULL OR d.leased_until < now())
              AND NOT EXISTS (
                SELECT 1 FROM webhook_deliveries p
                WHERE p.endpoint_id = d.endpoint_id AND p.order_id = d.order_id AND p.status = 'pending' AND p.version < d.version)
            ORDER BY d.next_attempt_at LIMIT greatest(${config.perEndpoint} - coalesce(b.n, 0), 0)
          ) c
          WHERE e.status = 'enabled'
          ORDER BY c.next_attempt_at LIMIT ${limit}
        )
        UPDATE webhook_deliveries d
        SET leased_until = now() + ${leaseMs} * interval '1 millisecond', lease_token = gen_random_uuid(),
            attempts = d.attempts + 1, last_attempt_at = now()
        FROM picked, webhook_endpoints e
        WHERE d.id = picked.id AND e.id = d.endpoint_id AND d.status = 'pending' AND (d.leased_until IS NULL OR d.leased_until < now())
        RETURNING d.id, d.lease_token, d.endpoint_id, d.order_id, d.version, d.event_type, d.body, d.attempts, d.event_recorded_at,
          d.traceparent, d.tracestate, e.url, e.secret,
          CASE WHEN e.previous_secret_until > now() THEN e.previous_secret END AS previous_secret`.pipe(orStoreError)
    }

    const log = (level: "Info" | "Warning" | "Error", message: string, type: string, d: Claimed, fields: Record<string, unknown>) =>
      (level === "Info" ? Effect.logInfo : level === "Warning" ? Effect.logWarning : Effect.logError)(message).pipe(
        Effect.annotateLogs({
          type,
          deliveryId: d.id,
          endpointId: d.endpoint_id,
          orderId: d.order_id,
          version: d.version,
          eventType: d.event_type,
          attempt: d.attempts,
          ...fields
        })
      )

    /** An outcome whose lease another notifier took over (it ran past its lease): not recorded; the other's counts. */
    const leaseLost = (d: Claimed, what: string) =>
      Metric.increment(Metric.tagged(webhookDeliveries, "outcome", "lease_lost")).pipe(
        Effect.zipRight(log("Warning", `webhook attempt outlived its lease; its outcome (${what}) is not recorded`, "WEBHOOK_LEASE_LOST", d, { outcome: what }))
      )

    /**
     * 2xx answers, any number in one statement: delivered (by the holder of the lease only); their endpoints'
     * failing runs end; and each one's successor — the next pending version of its (endpoint, order), when due and
     * nothing lower is pending — is leased at once when its endpoint has room (it is started by `slots`): an
     * order's next webhook needs no claim. Per answer, whether it was recorded.
     */
    const recordDelivered = (answers: ReadonlyArray<{ readonly d: Claimed; readonly status: number }>) =>
      slots.lease((lease) =>
        sql<{ id: string; recorded: boolean; next: Claimed | null }>`
          WITH a AS (${unnestRows(sql, { id: "uuid", token: "uuid", status: "int" }, answers.map(({ d, status }) => ({ id: d.id, token: d.lease_token, status })))}),
          busy AS (${busyRelation(sql, lease.busy)}),
          u AS (
            UPDATE webhook_deliveries w
            SET status = 'delivered', delivered_at = now(), leased_until = NULL, lease_token = NULL, last_status = a.status, last_error = NULL
            FROM a WHERE w.id = a.id AND w.status = 'pending' AND w.lease_token = a.token
            RETURNING w.id, w.endpoint_id, w.order_id, w.version),
          e AS (UPDATE webhook_endpoints SET failing_since = NULL WHERE id IN (SELECT endpoint_id FROM u) AND failing_since IS NOT NULL),
          nx AS (
            SELECT s.id, u.id AS after, coalesce(b.n, 0) AS n,
                   row_number() OVER (PARTITION BY s.endpoint_id ORDER BY s.id) AS k, row_number() OVER (ORDER BY s.id) AS g
            FROM u CROSS JOIN LATERAL (
              -- the lowest version still pending besides the one delivered now (this statement still sees it pending)
              SELECT p.id, p.endpoint_id, p.version, p.next_attempt_at, p.leased_until FROM webhook_deliveries p
              WHERE p.endpoint_id = u.endpoint_id AND p.order_id = u.order_id AND p.status = 'pending' AND p.id <> u.id
              ORDER BY p.version LIMIT 1) s
            LEFT JOIN busy b ON b.endpoint_id = s.endpoint_id
            WHERE s.version > u.version AND s.next_attempt_at <= now() AND (s.leased_until IS NULL OR s.leased_until < now())),
          l AS (
            UPDATE webhook_deliveries w
            SET leased_until = now() + ${lease.leaseMs} * interval '1 millisecond', lease_token = gen_random_uuid(),
                attempts = w.attempts + 1, last_attempt_at = now()
            FROM nx, webhook_endpoints ep
            WHERE w.id = nx.id AND nx.k <= greatest(${lease.perEndpoint} - nx.n, 0) AND nx.g <= ${lease.room}
              AND ep.id = w.endpoint_id AND ep.status = 'enabled' AND w.status = 'pending' AND (w.leased_until IS NULL OR w.leased_until < now())
            RETURNING nx.after, w.id, w.lease_token, w.endpoint_id, w.order_id, w.version, w.event_type, w.body, w.attempts,
              w.event_recorded_at, w.traceparent, w.tracestate, ep.url, ep.secret,
              CASE WHEN ep.previous_secret_until > now() THEN ep.previous_secret END AS previous_secret)
          SELECT a.id, EXISTS (SELECT 1 FROM u WHERE u.id = a.id) AS recorded, to_jsonb(l) - 'after' AS next
          FROM a LEFT JOIN l ON l.after = a.id`.pipe(
          orStoreError,
          Effect.map((rows) => {
            const byId = new Map(rows.map((r) => [r.id, r]))
            const results = answers.map(({ d }) => Either.right(byId.get(d.id)?.recorded === true))
            const next = rows.flatMap((r) => r.next === null ? [] : [claimedFromJson(r.next)])
            return [results, next] as const
          })
        )
      )
    // the 2xx answers that come in while one such statement runs go in the next one together
    const recordOne = yield* makeBatcher({ maxBatch: 500, workers: 1, span: "Dispatcher.recordDelivered", run: recordDelivered })

    /** A 2xx: delivered (by the holder of the lease only); the endpoint's failing run ends. Whether it was recorded. */
    const delivered = (d: Claimed, status: number) =>
      recordOne({ d, status }).pipe(
        Effect.flatMap((recorded) =>
          !recorded ? Effect.as(leaseLost(d, `HTTP ${status}`), false) : Effect.suspend(() => {
            const seconds = (Date.now() - new Date(d.event_recorded_at).getTime()) / 1000
            return Metric.update(webhookLatency, Math.max(seconds, 0))
          }).pipe(
            Effect.zipRight(Metric.increment(Metric.tagged(webhookDeliveries, "outcome", "delivered"))),
            Effect.zipRight(log("Info", "webhook delivered", "WEBHOOK_DELIVERED", d, { status })),
            Effect.as(true)
          ))
      )

    /** A failed attempt: due again after the schedule's next step, or given up; the endpoint's failing run. */
    const failedAttempt = (d: Claimed, answer: Answer, refused: boolean) =>
      Effect.gen(function*() {
        const gone = answer.status === 410
        const final = gone || d.attempts >= config.schedule.length
        const step = final ? 0 : config.schedule[d.attempts]!
        // Retry-After counts on a 429 or a 503 (it lengthens the wait, never shortens it)
        const retryAfter = answer.status === 429 || answer.status === 503 ? answer.retryAfterMs ?? 0 : 0
        const delay = Math.max(Math.round(step * (0.8 + Math.random() * 0.4)), retryAfter)
        const error = answer.error ?? `HTTP ${answer.status}`
        const rows = yield* sql<{ recorded: number; was: string | null; status: string | null; disabled_reason: string | null }>`
          WITH u AS (
            UPDATE webhook_deliveries
            SET status = ${final ? "failed" : "pending"}, next_attempt_at = now() + ${delay} * interval '1 millisecond',
                leased_until = NULL, lease_token = NULL, last_status = ${answer.status}, last_error = ${error.slice(0, 500)}
            WHERE id = ${d.id} AND status = 'pending' AND lease_token = ${d.lease_token} RETURNING endpoint_id),
          en AS (
          UPDATE webhook_endpoints e
          SET failing_since = coalesce(e.failing_since, now()),
              status = CASE WHEN ${gone} OR coalesce(e.failing_since, now()) < now() - ${config.disableAfterMs} * interval '1 millisecond'
                            THEN 'disabled' ELSE e.status END,
              disabled_reason = CASE WHEN o.was = 'disabled' THEN e.disabled_reason
                                     WHEN ${gone} THEN 'the endpoint answered 410 Gone'
                                     WHEN coalesce(e.failing_since, now()) < now() - ${config.disableAfterMs} * interval '1 millisecond'
                                     THEN 'every delivery failed since ' || e.failing_since::text
                                     ELSE e.disabled_reason END,
              updated_at = now()
          FROM (SELECT id, status AS was FROM webhook_endpoints WHERE id = ${d.endpoint_id} FOR UPDATE) o
          WHERE e.id = o.id AND e.id IN (SELECT endpoint_id FROM u)
          RETURNING o.was, e.status, e.disabled_reason)
          SELECT (SELECT count(*) FROM u)::int AS recorded, en.* FROM (SELECT 1) one LEFT JOIN en ON true`.pipe(orStoreError)
        if ((rows[0]?.recorded ?? 0) === 0) return yield* Effect.as(leaseLost(d, error), false)
        const outcome = final ? "failed" : refused ? "refused" : "retry"
        yield* Metric.increment(Metric.tagged(webhookDeliveries, "outcome", outcome))
        if (refused) yield* log("Warning", "webhook not sent: the endpoint's address is not allowed", "WEBHOOK_REFUSED", d, { error })
        if (final) yield* log("Error", "webhook delivery failed; given up (replayable)", "WEBHOOK_FAILED", d, { status: answer.status, error })
        else yield* log("Warning", "webhook delivery failed; retrying", "WEBHOOK_RETRY", d, { status: answer.status, error, retryInMs: delay })
        const row = rows[0]
        if (row !== undefined && row.was === "enabled" && row.status === "disabled") {
          yield* Metric.increment(webhookEndpointsDisabled)
          yield* Effect.logWarning("webhook endpoint disabled").pipe(
            Effect.annotateLogs({ type: "WEBHOOK_ENDPOINT_DISABLED", endpointId: d.endpoint_id, reason: row.disabled_reason })
          )
        }
        return true
      })

    return { claim, delivered, failedAttempt } as const
  })

/** The dispatcher: `wake` after writing deliveries; runs until the scope closes. */
export const makeDispatcher = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const config = yield* DispatcherConfig
  const resolver = Option.getOrElse(yield* Effect.serviceOption(WebhookResolver), () => systemResolver(config.timeoutMs))
  const { allow } = yield* Effect.orDie(AllowPrivateUrls)
  const scope = yield* Effect.scope
  // an attempt takes at most the name's resolution and the call (each bounded by the timeout) and its record: the
  // lease outlasts it; one that overran it anyway records nothing (its lease token is no longer the row's)
  const leaseMs = 2 * config.timeoutMs + 10_000

  /** Calls in flight per endpoint, and in all. */
  const inFlight = new Map<string, number>()
  let total = 0
  /** Endpoints whose due deliveries did not all fit their room: a call of theirs that ends wakes a pass. */
  const backlogged = new Set<string>()
  const latch = yield* Effect.makeLatch(false)
  const wake = latch.open

  // statements that lease deliveries run one at a time, each given the room left by the ones before
  const leasing = yield* Effect.makeSemaphore(1)
  let start: (claimed: ReadonlyArray<Claimed>) => Effect.Effect<void> = () => Effect.void
  const slots: Slots = {
    lease: (statement) =>
      leasing.withPermits(1)(
        Effect.suspend(() => statement({ perEndpoint: config.perEndpoint, leaseMs, busy: new Map(inFlight), room: config.total - total })).pipe(
          Effect.tap(([, claimed]) => start(claimed)),
          Effect.map(([a]) => a)
        )
      )
  }
  const queue = yield* makeDeliveryQueue({ ...config, leaseMs }, slots)
  const { claim, delivered, failedAttempt } = queue
  for (const outcome of ["delivered", "retry", "failed", "refused", "lease_lost"]) yield* Metric.incrementBy(Metric.tagged(webhookDeliveries, "outcome", outcome), 0)
  for (const where of ["dispatch", "record", "backlog"]) yield* Metric.incrementBy(Metric.tagged(notifierErrors, "where", where), 0)
  yield* Metric.incrementBy(webhookEndpointsDisabled, 0)

  /** One attempt of one leased delivery; never fails (a store failure leaves the lease to expire: retried). Its
   * slot is free once the endpoint answered (or not), before the outcome is recorded. */
  const attempt = (d: Claimed) => {
    let released = false
    const release = Effect.suspend(() => {
      if (released) return Effect.void
      released = true
      const n = (inFlight.get(d.endpoint_id) ?? 1) - 1
      if (n <= 0) inFlight.delete(d.endpoint_id)
      else inFlight.set(d.endpoint_id, n)
      // room for an endpoint that had more due than it could take, or for any when all the room was taken
      const wasFull = total >= config.total
      total--
      return backlogged.has(d.endpoint_id) || (wasFull && backlogged.size > 0) ? wake : Effect.void
    })
    const failed = (answer: Answer, refused: boolean) =>
      release.pipe(
        Effect.zipRight(failedAttempt(d, answer, refused)),
        // given up: the next version of its (endpoint, order) may go now
        Effect.tap(() => d.attempts >= config.schedule.length || answer.status === 410 ? wake : Effect.void)
      )
    return Effect.gen(function*() {
      const url = new URL(d.url)
      const host = hostOf(url)
      const resolve = Effect.tryPromise({ try: () => resolveTarget(resolver, host, allow), catch: (e) => e as Error })
      // an address needs no resolution; a name gets at most the timeout
      const target = yield* (isIP(host) !== 0 ? resolve : resolve.pipe(
        Effect.timeoutFail({ duration: Duration.millis(config.timeoutMs), onTimeout: () => new Error(`${host}: not resolved within ${config.timeoutMs} ms`) })
      )).pipe(Effect.either)
      if (target._tag === "Left") {
        return yield* failed({ status: null, retryAfterMs: null, error: target.left.message }, target.left instanceof UnsafeAddress)
      }
      const timestamp = Math.floor(Date.now() / 1000)
      const secrets = d.previous_secret === null ? [d.secret] : [d.secret, d.previous_secret]
      const answer = yield* post(url, target.right, {
        "content-type": "application/json",
        "user-agent": config.userAgent,
        "webhook-id": d.id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": signatureHeader(secrets, d.id, timestamp, d.body)
      }, d.body, config.timeoutMs)
      if (answer.status !== null && answer.status >= 200 && answer.status < 300) return yield* Effect.zipRight(release, delivered(d, answer.status))
      return yield* failed(answer, false)
    }).pipe(
      traced("Notifier.deliver", {
        kind: "client",
        attributes: { "order.id": d.order_id, "webhook.endpoint": d.endpoint_id, "webhook.delivery": d.id, "event.type": d.event_type }
      }),
      withRemoteParent({ traceparent: d.traceparent ?? undefined, tracestate: d.tracestate ?? undefined }),
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause) ? Effect.failCause(cause) as Effect.Effect<never> : Effect.logWarning("webhook delivery not recorded; its lease expires and it is tried again").pipe(
          Effect.annotateLogs({ type: "PROCESSING_ERROR", role: "notifier", deliveryId: d.id, error: Cause.pretty(cause).slice(0, 500) }),
          Effect.zipRight(Metric.increment(Metric.tagged(notifierErrors, "where", "record")))
        )
      ),
      Effect.ensuring(release)
    )
  }

  start = (claimed) =>
    Effect.forEach(claimed, (d) => {
      inFlight.set(d.endpoint_id, (inFlight.get(d.endpoint_id) ?? 0) + 1)
      total++
      return Effect.forkIn(attempt(d), scope)
    }, { discard: true })

  /** Take what is due while there is room; each delivery runs in its own fiber. */
  const drain: Effect.Effect<void> = Effect.gen(function*() {
    for (let round = 0; round < 100; round++) {
      const { claimed, full, room } = yield* slots.lease((lease) =>
        Effect.map(claim(lease.room, lease.busy), (claimed) => {
          // an endpoint that got all its room may have more due: its next free slot wakes a pass
          const got = new Map<string, number>()
          for (const d of claimed) got.set(d.endpoint_id, (got.get(d.endpoint_id) ?? 0) + 1)
          const filled = (id: string) => (got.get(id) ?? 0) >= config.perEndpoint - (lease.busy.get(id) ?? 0)
          // an endpoint stays backlogged while it had no room or took all it had; one that had room left is not
          for (const id of [...backlogged]) if (!filled(id)) backlogged.delete(id)
          for (const id of got.keys()) if (filled(id)) backlogged.add(id)
          return [{ claimed, full: claimed.length >= lease.room, room: lease.room }, claimed] as const
        })
      )
      if (room <= 0 || !full || claimed.length === 0) return
    }
  }).pipe(
    Effect.catchAllCause((cause) =>
      Cause.isInterruptedOnly(cause) ? Effect.failCause(cause) as Effect.Effect<never> : Effect.logWarning("webhook dispatch pass failed; the next one tries again").pipe(
        Effect.annotateLogs({ type: "PROCESSING_ERROR", role: "notifier", error: Cause.pretty(cause).slice(0, 500) }),
        Effect.zipRight(Metric.increment(Metric.tagged(notifierErrors, "where", "dispatch")))
      )
    )
  )

  /** The pending deliveries per endpoint, as the backlog gauge (every endpoint, 0 when none). */
  const backlog = sql<{ id: string; pending: number }>`
    SELECT e.id, (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.status = 'pending')::int AS pending
    FROM webhook_endpoints e`.pipe(
    orStoreError,
    Effect.flatMap((rows) => Effect.forEach(rows, (r) => Metric.set(Metric.tagged(webhookBacklog, "endpoint", r.id), r.pending), { discard: true })),
    Effect.catchAllCause((cause) =>
      Cause.isInterruptedOnly(cause) ? Effect.failCause(cause) as Effect.Effect<never> : Effect.logWarning("webhook backlog not read").pipe(
        Effect.annotateLogs({ type: "PROCESSING_ERROR", role: "notifier", error: Cause.pretty(cause).slice(0, 500) }),
        Effect.zipRight(Metric.increment(Metric.tagged(notifierErrors, "where", "backlog")))
      )
    )
  )

  /** Run until the scope closes: a pass when woken or every WEBHOOK_POLL_MS; the backlog every 5 s. */
  const run = Effect.gen(function*() {
    yield* Effect.forkScoped(Effect.repeat(backlog, Schedule.spaced(Duration.seconds(5))))
    yield* Effect.forkScoped(Effect.forever(
      latch.await.pipe(
        Effect.timeoutOption(Duration.millis(config.pollMs)),
        Effect.zipRight(latch.close),
        Effect.zipRight(drain)
      )
    ))
  })

  return {
    wake,
    run,
    inFlight: () => total,
    /** For the consumer: its writes lease the deliveries that may go at once, started here. */
    slots,
    /** Endpoints with due deliveries that did not fit their room (the consumer's writes tell it): a pass now
     * would find no room either; their next freed slot wakes one. */
    backlog: (endpointIds: ReadonlyArray<string>) =>
      Effect.sync(() => {
        for (const id of endpointIds) backlogged.add(id)
      })
  } as const
})
