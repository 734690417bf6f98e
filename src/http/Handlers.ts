/**
 * Handlers of the HTTP API. Every change goes through OrderActors; reads come from the `orders` projection
 * and the event log. POST /orders reads its own body so that every bad request gets its proper 4xx (the
 * generic payload decoder turns unreadable JSON into a 500) and nothing is written for it.
 */
import { HttpApiBuilder, type HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { Duration, Effect, Either, FiberRef, Layer, Option, ParseResult, Redacted, Schedule, Schema } from "effect"
import { createHash, timingSafeEqual } from "node:crypto"
import { type ExecuteOptions, OrderActors } from "../actor/OrderActors.js"
import { formatMoney, Money, parseMoney } from "../domain/Money.js"
import { fold } from "../domain/OrderDecider.js"
import { CancelOrder, type OrderId, OrderNotFound, PlaceOrder } from "../domain/Order.js"
import type { ConcurrencyConflict } from "../eventstore/EventStore.js"
import { EventStore } from "../eventstore/EventStore.js"
import { IdempotencyKeys } from "../idempotency/IdempotencyKeys.js"
import { uuidv4, uuidv7 } from "../Ids.js"
import { StatsProjection } from "../projection/StatsProjection.js"
import { OrdersReadModel } from "../projection/OrdersReadModel.js"
import { RebuildJobs } from "../projection/Rebuild.js"
import { Readiness } from "../Readiness.js"
import { latestMigrationId } from "../Sql.js"
import { type DeadLetter, DeadLetters } from "../deadletter/DeadLetters.js"
import { Kafka } from "../kafka/Kafka.js"
import { operationalGauges, renderPrometheus } from "../observability/Metrics.js"
import {
  AdminAuth,
  Api,
  BadRequest,
  DeadLetterNotFound,
  DeadLetterNotParked,
  Forbidden,
  Unauthorized,
  IdempotencyKeyInUse,
  IdempotencyKeyMismatch,
  NotReady,
  OrderBusy,
  OrderVersionNotFound,
  PlaceOrderBody,
  RebuildAlreadyRunning
} from "./Api.js"
import { correlationIdOf, currentCorrelationId } from "./Failures.js"
import { readJsonBody } from "./JsonBody.js"
import { defaultWatchSettings, OrderWatchers, OrderWatchersLive, type WatchSettings } from "./OrderWatch.js"
import { toEventView, toView } from "./Views.js"

export interface HttpSettings {
  readonly bodyLimit: number
  /** A body not fully received after this long → 408 and the connection closed (default 5 s). */
  readonly bodyTimeoutMs?: number
  readonly idempotencyLeaseMs: number
  /** Idempotency-Key records older than this are gone (default 24 h). */
  readonly idempotencyTtlMs?: number
  readonly watch?: WatchSettings
  readonly adminToken: Redacted.Redacted<string>
  /** Consumer group whose lag /metrics reports. */
  readonly workerGroup: string
}

export { toEventView, toView }

const busy = (e: ConcurrencyConflict) =>
  new OrderBusy({ orderId: e.streamId, message: "the order kept changing under this request; retry it" })

const decodePlaceOrder = Schema.decodeUnknown(PlaceOrderBody, { errors: "all", onExcessProperty: "error" })

const fingerprint = (value: unknown) => createHash("sha256").update(JSON.stringify(value)).digest("base64url")

/** The correlation id the failure middleware chose for this request (the same one its error bodies carry). */
const correlationOf = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.map(FiberRef.get(currentCorrelationId), (id) => id ?? correlationIdOf(request))

/** Release a failed request's claim at once; the database that failed it may take a moment to come back. */
const releaseSchedule = Schedule.exponential(Duration.millis(25)).pipe(Schedule.intersect(Schedule.recurs(6)))

const encodeCursor = (orderId: string) => Buffer.from(orderId).toString("base64url")
const decodeCursor = (cursor: string) => Schema.decodeUnknownOption(Schema.UUID)(Buffer.from(cursor, "base64url").toString())

export const OrdersHandlers = (settings: HttpSettings) =>
  HttpApiBuilder.group(Api, "orders", (handlers) =>
    Effect.gen(function*() {
      const actors = yield* OrderActors
      const readModel = yield* OrdersReadModel
      const store = yield* EventStore
      const keys = yield* IdempotencyKeys
      const watchers = yield* OrderWatchers
      const bodyTimeoutMs = settings.bodyTimeoutMs ?? 5_000
      const idempotencyTtlMs = settings.idempotencyTtlMs ?? 24 * 3600_000

      // untraced: a traced Effect.fn captures a stack trace per call, a measurable cost on the hottest path
      const place = Effect.fnUntraced(function*(
        request: HttpServerRequest.HttpServerRequest,
        idempotencyKey: string | undefined
      ) {
        const json = yield* readJsonBody(request, { bodyLimit: settings.bodyLimit, bodyTimeoutMs })
        const body = yield* decodePlaceOrder(json).pipe(
          Effect.mapError((e) => new BadRequest({ message: ParseResult.TreeFormatter.formatErrorSync(e) }))
        )
        const amount = parseMoney(body.amount, body.currency)
        if (Either.isLeft(amount)) return yield* amount.left
        // made of the decoded body, a parsed amount and fresh ids: validating it again cost ~30 µs per POST
        const command = new PlaceOrder({
          commandId: uuidv4() as PlaceOrder["commandId"],
          orderId: uuidv7() as OrderId,
          userId: body.userId,
          amount: amount.right,
          at: new Date()
        }, { disableValidation: true })
        const metadata = { correlationId: yield* correlationOf(request), causationId: command.commandId }
        const run = (options: ExecuteOptions) =>
          actors.execute(command, options).pipe(
            Effect.catchTags({
              ConcurrencyConflict: (e) => Effect.fail(busy(e)),
              // a new order id has no stream: these cannot answer a PlaceOrder
              OrderNotFound: Effect.die,
              IllegalTransition: Effect.die
            }),
            Effect.map(({ order }) => HttpServerResponse.unsafeJson(toView(order), { status: 201 }))
          )
        if (idempotencyKey === undefined) return yield* run({ metadata })
        const token = uuidv4()
        // a failed claim may still have been stored (the reply was lost): release it by its token, then fail
        const release = keys.release(idempotencyKey, token).pipe(
          Effect.sandbox,
          Effect.retry(releaseSchedule),
          Effect.catchAllCause((cause) =>
            Effect.logWarning("could not release an Idempotency-Key claim; it is taken over after the lease").pipe(
              Effect.annotateLogs({ type: "PROCESSING_ERROR", idempotencyKey, cause: String(cause) })
            )
          )
        )
        const claim = yield* keys.claim({
          key: idempotencyKey,
          fingerprint: fingerprint({ method: "POST", path: "/orders", body: { ...body, amount: formatMoney(amount.right) } }),
          token,
          leaseMs: settings.idempotencyLeaseMs,
          ttlMs: idempotencyTtlMs
        }).pipe(Effect.onError(() => release))
        switch (claim._tag) {
          case "Replay":
            return HttpServerResponse.unsafeJson(claim.body, {
              status: claim.status,
              headers: { "idempotent-replayed": "true" }
            })
          case "InFlight":
            return yield* new IdempotencyKeyInUse({
              message: "a request with this Idempotency-Key is still in progress; retry later"
            })
          case "Mismatch":
            return yield* new IdempotencyKeyMismatch({
              message: "this Idempotency-Key was used with a different request"
            })
        }
        // Uninterruptible: a client that hangs up does not cut the append short, so the release below never
        // races an append still running; a failed append never committed (or it completed the record, and
        // `release` leaves completed records alone).
        return yield* run({
          metadata,
          idempotency: { key: idempotencyKey, respond: (o) => ({ status: 201, body: toView(o) }) }
        }).pipe(Effect.onError(() => release), Effect.uninterruptible)
      })

      const notFound = (orderId: OrderId) => new OrderNotFound({ orderId, message: `order ${orderId} not found` })

      /** The order as of version `n`, folded from its stream (not the projection). */
      const atVersion = (orderId: OrderId, n: number) =>
        Effect.gen(function*() {
          const recorded = yield* store.readStream(orderId)
          if (recorded.length === 0) return yield* notFound(orderId)
          const current = recorded[recorded.length - 1]!.version
          if (n > current) {
            return yield* new OrderVersionNotFound({
              orderId,
              version: n,
              currentVersion: current,
              message: `order ${orderId} is at version ${current}; it has no version ${n} yet`
            })
          }
          return toView(fold(recorded.filter((r) => r.version <= n).map((r) => r.event))!)
        })

      return handlers
        .handleRaw("place", ({ headers, request }) =>
          place(request, headers["idempotency-key"]).pipe(
            // the rest of a late body is not worth waiting for: answer and close the connection
            Effect.catchTag("RequestTimeout", (e) =>
              Effect.succeed(HttpServerResponse.unsafeJson(e, { status: 408, headers: { connection: "close" } })))
          ))
        .handle("get", ({ path, urlParams }) =>
          urlParams.atVersion !== undefined
            ? atVersion(path.orderId, urlParams.atVersion)
            : readModel.get(path.orderId).pipe(
              Effect.flatMap(Option.match({
                onNone: () => Effect.fail(notFound(path.orderId)),
                onSome: (order) => Effect.succeed(toView(order))
              }))
            ))
        .handleRaw("watch", ({ headers, path }) =>
          Effect.map(watchers.watch(path.orderId, headers["last-event-id"] ?? 0), (stream) =>
            HttpServerResponse.stream(stream, {
              contentType: "text/event-stream",
              headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
            })))
        .handle("list", ({ urlParams }) =>
          Effect.gen(function*() {
            const limit = urlParams.limit ?? 20
            let before: OrderId | undefined
            if (urlParams.cursor !== undefined) {
              const decoded = decodeCursor(urlParams.cursor)
              if (Option.isNone(decoded)) return yield* new BadRequest({ message: "cursor is not one this API returned" })
              before = decoded.value as OrderId
            }
            const rows = yield* readModel.list({ status: urlParams.state, userId: urlParams.userId, before, limit: limit + 1 })
            const items = rows.slice(0, limit)
            return {
              items: items.map(toView),
              nextCursor: rows.length > limit ? encodeCursor(items[items.length - 1]!.orderId) : null
            }
          }))
        .handle("events", ({ path }) =>
          store.readStream(path.orderId).pipe(
            Effect.filterOrFail(
              (events) => events.length > 0,
              () => new OrderNotFound({ orderId: path.orderId, message: `order ${path.orderId} not found` })
            ),
            Effect.map((events) => events.map(toEventView))
          ))
        .handle("cancel", ({ path, request }) => {
          const command = new CancelOrder({
            commandId: uuidv4() as CancelOrder["commandId"],
            orderId: path.orderId,
            reason: "cancelled by the client",
            at: new Date()
          })
          return Effect.flatMap(correlationOf(request), (correlationId) =>
            actors.execute(command, { metadata: { correlationId, causationId: command.commandId } })).pipe(
            Effect.map(({ order }) => toView(order)),
            Effect.catchTags({
              ConcurrencyConflict: (e) => Effect.fail(busy(e)),
              OrderAlreadyExists: Effect.die
            })
          )
        })
    }))

export const HealthHandlers = HttpApiBuilder.group(Api, "health", (handlers) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const latest = yield* latestMigrationId
    const readiness = yield* Readiness
    // the other roles of this process must be doing their work too (the worker: its consumer consuming)
    const roles = Effect.flatMap(readiness.report, (checks) => {
      const failing = checks.filter((c) => !c.ok)
      return failing.length === 0
        ? Effect.succeed({ status: "ready" as const })
        : Effect.fail(new NotReady({ message: `not ready: ${failing.map((c) => `${c.name} ${JSON.stringify(c.detail ?? null)}`).join("; ")}` }))
    })
    return handlers
      .handle("live", () => Effect.succeed({ status: "ok" as const }))
      .handle("ready", () =>
        sql<{ applied: number | null }>`SELECT max(migration_id)::int AS applied FROM effect_sql_migrations`.pipe(
          Effect.flatMap(([row]) =>
            (row?.applied ?? 0) >= latest
              ? roles
              : Effect.fail(new NotReady({ message: `migrations pending: ${row?.applied ?? 0} of ${latest} applied` }))
          ),
          Effect.catchTag("SqlError", () => Effect.fail(new NotReady({ message: "the database does not answer" })))
        ))
  }))


export const AdminAuthLive = (token: Redacted.Redacted<string>) =>
  Layer.succeed(
    AdminAuth,
    AdminAuth.of({
      bearer: (given) =>
        Effect.suspend((): Effect.Effect<void, Unauthorized | Forbidden> => {
          const value = Redacted.value(given)
          if (value === "") return Effect.fail(new Unauthorized({ message: "an admin bearer token is required" }))
          const expected = Buffer.from(Redacted.value(token))
          const actual = Buffer.from(value)
          return actual.length === expected.length && timingSafeEqual(actual, expected)
            ? Effect.void
            : Effect.fail(new Forbidden({ message: "this token may not use the admin API" }))
        })
    })
  )

export const AdminHandlers = HttpApiBuilder.group(Api, "admin", (handlers) =>
  Effect.gen(function*() {
    const deadLetters = yield* DeadLetters
    const notFound = (id: number) => new DeadLetterNotFound({ id: String(id), message: `dead letter ${id} not found` })
    const changed = (id: number, change: (id: string) => Effect.Effect<Option.Option<DeadLetter>>) =>
      Effect.flatMap(change(String(id)), Option.match({
        onSome: Effect.succeed,
        onNone: () =>
          Effect.flatMap(deadLetters.get(String(id)), (found): Effect.Effect<never, DeadLetterNotFound | DeadLetterNotParked> =>
            Option.isNone(found)
              ? Effect.fail(notFound(id))
              : Effect.fail(new DeadLetterNotParked({ id: found.value.id, message: `dead letter ${id} is ${found.value.status}` })))
      }))
    return handlers
      .handle("listDeadLetters", ({ urlParams }) => deadLetters.list(urlParams.status, urlParams.limit ?? 100))
      .handle("getDeadLetter", ({ path }) =>
        Effect.flatMap(deadLetters.get(String(path.id)), Option.match({
          onNone: () => Effect.fail(notFound(path.id)),
          onSome: Effect.succeed
        })))
      .handle("replayDeadLetter", ({ path }) =>
        changed(path.id, deadLetters.replay).pipe(
          Effect.tap((d) => Effect.logInfo("dead letter replayed").pipe(Effect.annotateLogs({ type: "DLQ_REPLAY", id: d.id, orderId: d.key })))
        ))
      .handle("discardDeadLetter", ({ path }) =>
        changed(path.id, deadLetters.discard).pipe(
          Effect.tap((d) => Effect.logInfo("dead letter discarded").pipe(Effect.annotateLogs({ type: "DLQ_DISCARD", id: d.id, orderId: d.key })))
        ))
  }))

export const MetricsHandlers = (workerGroup: string) =>
  HttpApiBuilder.group(Api, "metrics", (handlers) =>
    Effect.gen(function*() {
      const context = yield* Effect.context<SqlClient.SqlClient | Kafka | StatsProjection>()
      return handlers.handle("metrics", () =>
        operationalGauges(workerGroup).pipe(Effect.flatMap(renderPrometheus), Effect.provide(context)))
    }))

export const HttpHandlersLive = (settings: HttpSettings) =>
  HttpApiBuilder.api(Api).pipe(
    Layer.provide([
      OrdersHandlers(settings).pipe(Layer.provide(OrderWatchersLive(settings.watch ?? defaultWatchSettings))),
      HealthHandlers,
      AdminHandlers.pipe(Layer.provide(AdminAuthLive(settings.adminToken))),
      AdminProjectionsHandlers.pipe(Layer.provide(AdminAuthLive(settings.adminToken))),
      StatsHandlers,
      MetricsHandlers(settings.workerGroup)
    ])
  )

export const AdminProjectionsHandlers = HttpApiBuilder.group(Api, "adminProjections", (handlers) =>
  Effect.gen(function*() {
    const jobs = yield* RebuildJobs
    const stats = yield* StatsProjection
    const sql = yield* SqlClient.SqlClient
    return handlers
      .handle("rebuildOrders", () =>
        Effect.flatMap(jobs.start, (started) =>
          started
            ? jobs.status
            : Effect.fail(new RebuildAlreadyRunning({ message: "a rebuild of orders is already running" }))))
      .handle("projectionsStatus", () =>
        Effect.gen(function*() {
          const [counts] = yield* sql<{ rows: number; events: number }>`
            SELECT (SELECT count(*) FROM orders)::int AS rows, (SELECT count(*) FROM events)::int AS events`.pipe(Effect.orDie)
          return {
            orders: { rows: counts!.rows, events: counts!.events, rebuild: yield* jobs.status },
            stats: { lagEvents: yield* stats.lag }
          }
        }))
  }))

export const StatsHandlers = HttpApiBuilder.group(Api, "stats", (handlers) =>
  Effect.gen(function*() {
    const stats = yield* StatsProjection
    return handlers
      .handle("revenue", () =>
        Effect.map(stats.revenue, (rows) =>
          rows.map((r) => ({
            currency: r.currency,
            day: r.day,
            paidOrders: Number(r.paid_orders),
            revenue: formatMoney(new Money({ minor: BigInt(r.revenue_minor), currency: r.currency as Money["currency"] }, { disableValidation: true }))
          }))))
      .handle("ordersByState", () =>
        Effect.map(stats.byState, (rows) => Object.fromEntries(rows.map((r) => [r.status, Number(r.orders)]))))
  }))
