/**
 * Placing an order: mints the order's id (UUIDv7: creation order = id order) and the command's id, and keeps
 * the Idempotency-Key protocol (Stripe semantics, docs/DECISIONS.md "Idempotency-Key"): claim the key with a fresh token; replay
 * a completed record; 409 while the first request runs; 422 for another body under the same key; the record
 * is completed in the append's own transaction; a request that fails before its append committed releases its
 * claim at once, by its token (invariant 11: a failed keyed request can be retried at once) — unless the claim
 * never got a connection, and so holds nothing.
 */
import { Cause, Config, Context, Duration, Effect, Either, Layer, Metric, Option, Schedule } from "effect"
import { createHash } from "node:crypto"
import { type ExecuteOptions, OrderActors } from "../actor/OrderActors.js"
import { deadlineIn } from "../Batcher.js"
import { formatMoney, type InvalidAmount, parseMoney } from "../domain/Money.js"
import { type OrderAlreadyExists, type OrderId, PlaceOrder as PlaceOrderCommand } from "../domain/Order.js"
import type { ConcurrencyConflict } from "../eventstore/EventStore.js"
import { completesKey } from "../idempotency/IdempotencyCompletion.js"
import { IdempotencyKeys } from "../idempotency/IdempotencyKeys.js"
import { IdempotencyTtlMs } from "../Config.js"
import { uuidv4, uuidv7 } from "../Ids.js"
import { makePermits } from "../Permits.js"
import { deadlinePassed, RequestTimeoutMs, withinDeadline } from "../http/RequestDeadline.js"
import { neverSent, type StoreError } from "../Infrastructure.js"
import { IdempotencyKeyInUse, IdempotencyKeyMismatch, OrderBusy, type PlaceOrderBody } from "./Api.js"
import { toView } from "./Views.js"

export const PlaceOrderConfig = Config.all({
  /** A claim left by a crashed process is taken over after this long. */
  idempotencyLeaseMs: Config.integer("IDEMPOTENCY_LEASE_MS").pipe(Config.withDefault(60_000)),
  /** Idempotency-Key records older than this are gone (default 24 h). */
  idempotencyTtlMs: IdempotencyTtlMs,
  /**
   * How long placing an order may wait for the database in all (its claim, the append, a failed claim's
   * release): each statement is bounded (DATABASE_QUERY_TIMEOUT_MS, src/Sql.ts), but a request may meet several,
   * and a queue behind a hung append; by this it is answered 503. A request without a key waits only for its
   * append: the append batcher answers it at the deadline, dropping the append if no batch took it yet (one
   * already sent completes or fails on its own, as an append is never taken back half-way). A keyed request's
   * work is stopped a little earlier (up to 1 s) to release its claim before the answer, or in the background if
   * the database does not take it in time, and interrupted as if the client had hung up — the append's guard
   * (IdempotencyCompletion) refuses it once its claim is gone, so no keyed order is written behind the client's
   * back. 0: no deadline.
   */
  requestTimeoutMs: RequestTimeoutMs
})
export type PlaceOrderSettings = Config.Config.Success<typeof PlaceOrderConfig>

export interface PlaceOrderRequest {
  readonly body: PlaceOrderBody
  readonly idempotencyKey: string | undefined
  readonly correlationId: string
}

/** The response to give: a new order (201), or the first response to this Idempotency-Key, replayed. */
export interface Placed {
  readonly status: number
  readonly body: unknown
  readonly replayed: boolean
}

export type PlaceOrderError =
  | InvalidAmount
  | IdempotencyKeyInUse
  | IdempotencyKeyMismatch
  | OrderBusy
  | OrderAlreadyExists
  | StoreError

export const orderBusy = (e: ConcurrencyConflict) =>
  new OrderBusy({ orderId: e.streamId, message: "the order kept changing under this request; retry it" })

const fingerprint = (value: unknown) => createHash("sha256").update(JSON.stringify(value)).digest("base64url")

/**
 * Release a failed request's claim before answering, so that the client's retry finds the key free; the
 * database that failed it may take a moment to come back — a fast restart is down for seconds — so the release
 * keeps trying for up to 5 s (every 25 ms at first, then every 500 ms), well within a client's timeout.
 */
const releaseSchedule = Schedule.exponential(Duration.millis(25)).pipe(
  Schedule.union(Schedule.spaced(Duration.millis(500))),
  Schedule.upTo(Duration.seconds(5))
)

/**
 * A release that could not be made before the answer goes on in the background (every 100 ms at first, then
 * every 2 s, for twice the lease): the request's own claim may still reach the database after the answer — it
 * sat unread in a backend that hung — and only a release recorded by then makes it hold nothing
 * (IdempotencyKeys). Given up, the claim is taken over after its lease.
 */
const laterSchedule = (leaseMs: number) =>
  Schedule.exponential(Duration.millis(100)).pipe(
    Schedule.union(Schedule.spaced(Duration.seconds(2))),
    Schedule.upTo(Duration.millis(2 * leaseMs))
  )

const deferredReleases = Metric.counter("idempotency_deferred_releases_total", {
  description: "Idempotency-Key releases that failed before the answer, by outcome (deferred, released later, gave_up)",
  incremental: true
})

export class PlaceOrder extends Context.Tag("PlaceOrder")<PlaceOrder, {
  readonly place: (request: PlaceOrderRequest) => Effect.Effect<Placed, PlaceOrderError>
}>() {}

const make = (settings: PlaceOrderSettings) =>
  Effect.gen(function*() {
    const actors = yield* OrderActors
    const keys = yield* IdempotencyKeys
    // background releases take a pooled connection each: a few at a time, so that a burst of 503s in an
    // outage does not crowd out new requests once the database is back
    const backgroundReleases = makePermits(4)
    // a keyed request's deadline keeps this much for releasing its claim before the answer
    const releaseBudgetMs = Math.min(1_000, Math.floor(settings.requestTimeoutMs / 5))
    const ttlMs = settings.idempotencyTtlMs
    const later = laterSchedule(settings.idempotencyLeaseMs)
    /** The background release (built only when a request needs one, not per request). */
    const releaseLater = (idempotencyKey: string, token: string) =>
      backgroundReleases.withPermit(keys.release(idempotencyKey, token)).pipe(
        Effect.retry(later),
        Effect.matchCauseEffect({
          onSuccess: () =>
            Effect.logInfo("released an Idempotency-Key claim after the answer").pipe(
              Effect.annotateLogs({ type: "IDEMPOTENCY_RELEASE", outcome: "released", idempotencyKey }),
              Effect.zipRight(Metric.increment(Metric.tagged(deferredReleases, "outcome", "released")))
            ),
          onFailure: (cause) =>
            Effect.logError("gave up releasing an Idempotency-Key claim; it is taken over after its lease").pipe(
              Effect.annotateLogs({ type: "IDEMPOTENCY_RELEASE", outcome: "gave_up", idempotencyKey, cause: String(cause) }),
              Effect.zipRight(Metric.increment(Metric.tagged(deferredReleases, "outcome", "gave_up")))
            )
        })
      )

    const timedOut = () => deadlinePassed(settings.requestTimeoutMs)

    // untraced: a traced Effect.fn captures a stack trace per call, a measurable cost on the hottest path
    const place = Effect.fnUntraced(function*({ body, correlationId, idempotencyKey }: PlaceOrderRequest) {
      const amount = parseMoney(body.amount, body.currency)
      if (Either.isLeft(amount)) return yield* amount.left
      // made of the decoded body, a parsed amount and fresh ids: validating it again cost ~30 µs per POST
      const command = new PlaceOrderCommand({
        commandId: uuidv4() as PlaceOrderCommand["commandId"],
        orderId: uuidv7() as OrderId,
        userId: body.userId,
        amount: amount.right,
        at: new Date()
      }, { disableValidation: true })
      const metadata = { correlationId, causationId: command.commandId }
      const run = (options: ExecuteOptions) =>
        actors.execute(command, options).pipe(
          Effect.catchTags({
            ConcurrencyConflict: (e) => Effect.fail(orderBusy(e)),
            // a new order id has no stream: these cannot answer a PlaceOrder
            OrderNotFound: Effect.die,
            IllegalTransition: Effect.die,
            RefundRefused: Effect.die
          }),
          Effect.map(({ order }): Placed => ({ status: 201, body: toView(order), replayed: false }))
        )
      // without a key the append is the request's only wait for the database: the deadline goes with it to the
      // append batcher (one timer per batcher), not a forked fiber and a timer per request — 15 % of the api
      // role's CPU per POST (docs/PERFORMANCE.md "The request deadline, again")
      if (idempotencyKey === undefined) {
        return yield* run(
          settings.requestTimeoutMs <= 0
            ? { metadata }
            : { metadata, deadline: yield* deadlineIn(settings.requestTimeoutMs, timedOut) }
        )
      }
      const token = uuidv4()
      /** Hand the release of this request's claim to the background (`laterSchedule`), logged and counted;
       * once per request (the deadline's and a failed claim's may both ask). */
      let handedOver = false
      const releaseInBackground = (why: string, cause?: Cause.Cause<unknown>) =>
        Effect.suspend(() => {
          if (handedOver) return Effect.void
          handedOver = true
          return Effect.logWarning(`Idempotency-Key claim to be released in the background: ${why}`).pipe(
            Effect.annotateLogs({ type: "IDEMPOTENCY_RELEASE", outcome: "deferred", idempotencyKey, ...(cause ? { cause: String(cause) } : {}) }),
            Effect.zipRight(Metric.increment(Metric.tagged(deferredReleases, "outcome", "deferred"))),
            Effect.zipRight(Effect.forkDaemon(releaseLater(idempotencyKey, token))),
            Effect.asVoid
          )
        })
      // a failed claim may still have been stored (the reply was lost): release it by its token, then fail
      const release = keys.release(idempotencyKey, token).pipe(
        Effect.sandbox,
        Effect.retry(releaseSchedule),
        Effect.catchAllCause((cause) => releaseInBackground("it could not be released before the answer", cause))
      )
      // the claim of a request answered 503 at its deadline is released before the answer when the database
      // takes it within the last `releaseBudgetMs` of the deadline (a client retrying at once then finds the key
      // free); else in the background
      const releaseAtDeadline = keys.release(idempotencyKey, token).pipe(
        Effect.disconnect,
        Effect.timeout(Duration.millis(releaseBudgetMs)),
        Effect.catchAllCause((cause) => releaseInBackground("it could not be released by the deadline", cause))
      )
      const keyed = Effect.gen(function*() {
        const claim = yield* keys.claim({
          key: idempotencyKey,
          fingerprint: fingerprint({ method: "POST", path: "/orders", body: { ...body, amount: formatMoney(amount.right) } }),
          token,
          leaseMs: settings.idempotencyLeaseMs,
          ttlMs
        }).pipe(
          // a claim that got no connection holds nothing: answered at once, no release to wait for (in an
          // outage a release per request, retried until the deadline, kept every answer 5 s late)
          Effect.onError((cause) => Cause.failureOption(cause).pipe(Option.exists(neverSent)) ? Effect.void : release)
        )
        switch (claim._tag) {
          case "Replay":
            return { status: claim.status, body: claim.body, replayed: true }
          case "InFlight":
            return yield* new IdempotencyKeyInUse({
              message: "a request with this Idempotency-Key is still in progress; retry later"
            })
          case "Mismatch":
            return yield* new IdempotencyKeyMismatch({
              message: "this Idempotency-Key was used with a different request"
            })
        }
        // Uninterruptible: a client that hangs up does not cut the append short, so `release` here never races
        // an append still running; a failed append never committed (or it completed the record, and `release`
        // leaves completed records alone). The release at the deadline may race it: the append's claim guard
        // (IdempotencyCompletion) settles that race, whichever comes first.
        return yield* run({
          metadata,
          participants: completesKey(idempotencyKey, token, (order) => ({ status: 201, body: toView(order) }))
        }).pipe(Effect.onError(() => release), Effect.uninterruptible)
      })
      // the claim, the append, maybe a release: several statements — the work is stopped a little early to
      // release the claim before the 503
      return yield* withinDeadline(keyed, settings.requestTimeoutMs - releaseBudgetMs, timedOut, releaseAtDeadline)
    })

    return PlaceOrder.of({ place })
  })

export const PlaceOrderLive = Layer.effect(PlaceOrder, Effect.flatMap(Effect.orDie(PlaceOrderConfig), make))
