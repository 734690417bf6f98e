/**
 * The payment of one order (docs/ARCHITECTURE.md "Payment worker"), apart from Kafka: used by the consumer (an
 * OrderPlaced message), the scheduler (a due retry, a stuck order, a parked payment) and the property tests.
 *
 *   inbox check → StartPayment (PAYMENT_PENDING) → charge, idempotency key = payment id →
 *   RecordPayment… (PAID / FAILED) appended together with the inbox row, in one transaction.
 *
 * Command, event and payment ids are derived from the OrderPlaced event id, so every path that drives the
 * same order issues the very same commands and charge: the provider answers a known key with its first
 * result, and the appends are no-ops. It can never charge twice nor append twice.
 *
 * Failures never hold a message: a few quick attempts in process (`PAYMENT_QUICK_ATTEMPTS`, backoff
 * `PAYMENT_RETRY_BASE_MS`); then the retry becomes durable — PaymentRetryScheduled { attempt, dueAt } in the
 * order's own stream — and the message is finished; the scheduler calls again when it is due (exponential from
 * `PAYMENT_RETRY_DELAY_MS`, capped at `PAYMENT_RETRY_MAX_DELAY_MS`, jittered). After `PAYMENT_MAX_ATTEMPTS`
 * failed passes the payment is parked: PaymentRetryScheduled with no due time, a dead letter for the operator
 * (whose replay drives it again), and the order stays PAYMENT_PENDING — never FAILED on a guess: the provider
 * may have taken a charge it could not confirm (the scheduler asks it later). The open breaker makes no call:
 * the retry is due when the breaker lets a probe through, and costs no attempt.
 *
 * A refund (RefundRequested) goes the same way with its own id as the provider's key: inbox check → refund →
 * RecordRefundSucceeded / RecordRefundFailed with the inbox row; quick attempts, then RefundRetryScheduled in the
 * order's stream (the attempt count and due time are the refund's state, not read from history), parked after
 * `PAYMENT_MAX_ATTEMPTS`; the breaker is the one charges use.
 */
import { Clock, Config, Duration, Effect, Either, Metric, Random, Schedule, Schema } from "effect"
import { OrderActors } from "../actor/OrderActors.js"
import { WorkerGroup } from "../Config.js"
import { CrashPoints } from "../CrashPoints.js"
import {
  type EventId,
  type Order,
  type OrderCommand,
  type OrderId,
  type PaymentId,
  RecordPaymentFailed,
  RecordPaymentSucceeded,
  RecordRefundFailed,
  RecordRefundSucceeded,
  type Refund,
  type RefundId,
  SchedulePaymentRetry,
  ScheduleRefundRetry,
  StartPayment
} from "../domain/Order.js"
import { isRejection, type Rejection } from "../domain/Order.js"
import { EventStore } from "../eventstore/EventStore.js"
import { deriveId } from "../Ids.js"
import { finishesMessage, Inbox } from "../inbox/Inbox.js"
import { logInfoWithFields } from "../observability/Logging.js"
import { traced } from "../observability/Tracing.js"
import { retryAfterFailure } from "../Retrying.js"
import { type BreakerOpen, breakerOpened, makeCircuitBreaker } from "./CircuitBreaker.js"
import { type ChargeResult, PaymentGateway, type PaymentUnavailable, type RefundResult } from "./PaymentGateway.js"
import * as counters from "./PaymentMetrics.js"

export const PaymentConfig = Config.all({
  groupId: WorkerGroup,
  quickAttempts: Config.integer("PAYMENT_QUICK_ATTEMPTS").pipe(Config.withDefault(3)),
  retryBaseMs: Config.integer("PAYMENT_RETRY_BASE_MS").pipe(Config.withDefault(100)),
  maxAttempts: Config.integer("PAYMENT_MAX_ATTEMPTS").pipe(Config.withDefault(8)),
  retryDelayMs: Config.integer("PAYMENT_RETRY_DELAY_MS").pipe(Config.withDefault(1000)),
  retryMaxDelayMs: Config.integer("PAYMENT_RETRY_MAX_DELAY_MS").pipe(Config.withDefault(60_000)),
  breakerThreshold: Config.integer("BREAKER_THRESHOLD").pipe(Config.withDefault(3)),
  breakerCooldownMs: Config.integer("BREAKER_COOLDOWN_MS").pipe(Config.withDefault(2000)),
  breakerFailureRatio: Config.number("BREAKER_FAILURE_RATIO").pipe(Config.withDefault(0.5)),
  breakerWindowMs: Config.integer("BREAKER_WINDOW_MS").pipe(Config.withDefault(10_000))
})
export type PaymentConfig = Config.Config.Success<typeof PaymentConfig>

/** Not settled now, parked for the operator after `attempts` failed passes. */
export class PaymentParked extends Schema.TaggedError<PaymentParked>()("PaymentParked", {
  orderId: Schema.String,
  attempts: Schema.Int,
  message: Schema.String,
  /** Set when a refund is parked (its RefundRequested message is the dead letter), not the payment. */
  refundId: Schema.optional(Schema.String)
}) {}

export type Outcome = "processed" | "duplicate" | "ignored" | "retry-scheduled"

/** A command the domain refused, as a value (nothing to do); a store failure still fails (it is retried or
 * parked by the caller, never taken for "nothing to do"). */
const rejectedAsValue = <A, E, R>(
  self: Effect.Effect<A, E, R>
): Effect.Effect<Either.Either<A, Extract<E, Rejection>>, Exclude<E, Rejection>, R> =>
  Effect.catchIf(
    Effect.map(self, (a): Either.Either<A, Extract<E, Rejection>> => Either.right(a)),
    isRejection as (e: E) => e is Extract<E, Rejection>,
    (rejection) => Effect.succeed(Either.left(rejection) as Either.Either<A, Extract<E, Rejection>>)
  ) as Effect.Effect<Either.Either<A, Extract<E, Rejection>>, Exclude<E, Rejection>, R>

export class PaymentProcessor extends Effect.Service<PaymentProcessor>()("PaymentProcessor", {
  effect: Effect.gen(function*() {
    const config = yield* PaymentConfig
    const actors = yield* OrderActors
    const store = yield* EventStore
    const inbox = yield* Inbox
    const gateway = yield* PaymentGateway
    const crash = yield* CrashPoints
    const breaker = yield* makeCircuitBreaker({
      threshold: config.breakerThreshold,
      cooldown: Duration.millis(config.breakerCooldownMs),
      failureRatio: config.breakerFailureRatio,
      window: Duration.millis(config.breakerWindowMs)
    })
    const consumer = config.groupId
    // counters exist (at 0) from the start, so /metrics always lists them
    for (const c of [...Object.values(counters), breakerOpened]) yield* Metric.incrementBy(c, 0)

    const quickRetries = Schedule.exponential(Duration.millis(config.retryBaseMs)).pipe(
      Schedule.jittered,
      Schedule.intersect(Schedule.recurs(Math.max(0, config.quickAttempts - 1)))
    )

    /** One provider call with quick attempts in process; stops at once when the breaker is open. */
    const call = <A>(
      request: Effect.Effect<A, PaymentUnavailable>,
      order: Order,
      span: string,
      attributes: Record<string, string>,
      ids: Record<string, string>
    ): Effect.Effect<A, PaymentUnavailable | BreakerOpen> =>
      breaker.run(request, (e: PaymentUnavailable) => e._tag === "PaymentUnavailable").pipe(
        Effect.tapError((e) =>
          e._tag === "PaymentUnavailable"
            ? Metric.increment(counters.paymentRetries).pipe(Effect.zipRight(Effect.logInfo("payment call failed").pipe(
              Effect.annotateLogs({ type: "PAYMENT_CALL_FAILED", orderId: order.orderId, ...ids, error: e.message })
            )))
            : Effect.void
        ),
        (attempt) =>
          retryAfterFailure(attempt, {
            schedule: quickRetries,
            while: (e: PaymentUnavailable | BreakerOpen) => e._tag === "PaymentUnavailable"
          }),
        traced(span, { attributes: { "order.id": order.orderId, ...attributes } })
      )

    const charge = (order: Order): Effect.Effect<ChargeResult, PaymentUnavailable | BreakerOpen> =>
      call(
        gateway.charge({
          idempotencyKey: order.paymentId!,
          orderId: order.orderId,
          amountMinor: order.amount.minor,
          currency: order.amount.currency
        }),
        order,
        "PaymentProcessor.charge",
        { "payment.id": order.paymentId ?? "" },
        {}
      )

    /** When the next pass is due after a failed one (`attempt` failed calls so far), or null: parked. */
    const nextDue = (attempt: number, error: PaymentUnavailable | BreakerOpen, now: number) =>
      Effect.gen(function*() {
        if (attempt >= config.maxAttempts) return null
        const called = error._tag === "PaymentUnavailable"
        const backoff = called ? Math.min(config.retryMaxDelayMs, config.retryDelayMs * 2 ** (attempt - 1)) : 0
        const jitter = yield* Random.nextRange(0.8, 1.2)
        const wait = Math.max(backoff * jitter, error._tag === "BreakerOpen" ? error.retryAfterMs : 0)
        return new Date(now + Math.round(wait))
      })

    /** Failed passes of this payment so far, from the order's stream. */
    const attemptsSoFar = (order: Order) =>
      Effect.map(store.readStream(order.orderId), (events) =>
        events.reduce((n, r) =>
          r.event._tag === "PaymentRetryScheduled" && r.event.paymentId === order.paymentId ? Math.max(n, r.event.attempt) : n, 0))

    /** Record a failed pass: the next retry is due later, or the payment is parked. */
    const failed = (order: Order, error: PaymentUnavailable | BreakerOpen) =>
      Effect.gen(function*() {
        const paymentId = order.paymentId as PaymentId
        const previous = yield* attemptsSoFar(order)
        const called = error._tag === "PaymentUnavailable"
        const attempt = previous + (called ? 1 : 0)
        const message = called ? error.message : "circuit breaker open"
        const now = yield* Clock.currentTimeMillis
        const dueAt = yield* nextDue(attempt, error, now)
        const parked = dueAt === null
        yield* actors.execute(
          new SchedulePaymentRetry({
            commandId: deriveId(paymentId, `retry/${attempt}/${dueAt?.getTime() ?? "parked"}`) as EventId,
            orderId: order.orderId,
            paymentId,
            attempt,
            dueAt,
            error: message.slice(0, 500),
            at: new Date(now)
          }, { disableValidation: true })
        ).pipe(Effect.catchTag("ConcurrencyConflict", Effect.die), Effect.catchIf(isRejection, () => Effect.void))
        if (parked) {
          yield* Metric.increment(counters.paymentsParked)
          yield* Effect.logWarning("payment attempts exhausted: parked for an operator").pipe(
            Effect.annotateLogs({ type: "PAYMENT_PARKED", orderId: order.orderId, paymentId, attempts: attempt, error: message })
          )
          return yield* new PaymentParked({ orderId: order.orderId, attempts: attempt, message })
        }
        yield* Metric.increment(counters.paymentRetriesScheduled)
        yield* Effect.logInfo("payment retry scheduled").pipe(
          Effect.annotateLogs({ type: "RETRY_SCHEDULED", orderId: order.orderId, paymentId, attempt, dueAt: dueAt!.toISOString(), error: message })
        )
        return "retry-scheduled" as Outcome
      })

    /** Append a provider's answer with the message's inbox row (when given) in the same transaction; false when
     * it was recorded already (by the scheduler, or before a crash): nothing appended, the inbox row written alone. */
    const appendResult = (command: OrderCommand, messageId: string | undefined) =>
      Effect.gen(function*() {
        const done = yield* actors.execute(command, messageId ? { participants: finishesMessage({ consumer, messageId }) } : {}).pipe(
          Effect.catchTag("ConcurrencyConflict", Effect.die),
          rejectedAsValue
        )
        if (Either.isRight(done) && done.right.events.length > 0) return true
        if (messageId) yield* inbox.markProcessed(consumer, messageId)
        return false
      })

    /** Record the provider's answer; the inbox row (when given) goes into the same transaction. */
    const record = (order: Order, result: ChargeResult, messageId: string | undefined) =>
      Effect.gen(function*() {
        const paymentId = order.paymentId as PaymentId
        const base = {
          commandId: deriveId(paymentId, "result") as EventId,
          orderId: order.orderId,
          paymentId,
          at: new Date(yield* Clock.currentTimeMillis)
        }
        // derived ids and the order's own fields: nothing left to validate
        const command = result.outcome === "succeeded"
          ? new RecordPaymentSucceeded(base, { disableValidation: true })
          : new RecordPaymentFailed({ ...base, reason: "declined by the provider" }, { disableValidation: true })
        if (!(yield* appendResult(command, messageId))) return "processed" as Outcome
        yield* Metric.increment(result.outcome === "succeeded" ? counters.paymentsSucceeded : counters.paymentsFailed)
        yield* logInfoWithFields("payment result", {
          type: "PAYMENT_RESULT",
          orderId: order.orderId,
          outcome: result.outcome,
          chargeId: result.chargeId
        })
        return "processed" as Outcome
      })

    /** Record a failed refund pass: the next retry is due later, or the refund is parked. Its attempts so far
     * are the refund's state. */
    const refundFailed = (order: Order, refund: Refund, error: PaymentUnavailable | BreakerOpen) =>
      Effect.gen(function*() {
        const called = error._tag === "PaymentUnavailable"
        const attempt = refund.attempt + (called ? 1 : 0)
        const message = called ? error.message : "circuit breaker open"
        const now = yield* Clock.currentTimeMillis
        const dueAt = yield* nextDue(attempt, error, now)
        const appended = yield* actors.execute(
          new ScheduleRefundRetry({
            commandId: deriveId(refund.refundId, `retry/${attempt}/${dueAt?.getTime() ?? "parked"}`) as EventId,
            orderId: order.orderId,
            refundId: refund.refundId,
            attempt,
            dueAt,
            error: message.slice(0, 500),
            at: new Date(now)
          }, { disableValidation: true })
        ).pipe(
          Effect.map((executed) => executed.events.length > 0),
          Effect.catchTag("ConcurrencyConflict", Effect.die),
          Effect.catchIf(isRejection, () => Effect.succeed(false))
        )
        // settled meanwhile (its result recorded by another path), or this very retry recorded already: nothing
        // to log, count or park
        if (!appended) return "processed" as Outcome
        if (dueAt === null) {
          yield* Metric.increment(counters.refundsParked)
          yield* Effect.logWarning("refund attempts exhausted: parked for an operator").pipe(
            Effect.annotateLogs({ type: "REFUND_PARKED", orderId: order.orderId, refundId: refund.refundId, attempts: attempt, error: message })
          )
          return yield* new PaymentParked({ orderId: order.orderId, attempts: attempt, message, refundId: refund.refundId })
        }
        yield* Metric.increment(counters.paymentRetriesScheduled)
        yield* Effect.logInfo("refund retry scheduled").pipe(
          Effect.annotateLogs({ type: "RETRY_SCHEDULED", orderId: order.orderId, refundId: refund.refundId, attempt, dueAt: dueAt.toISOString(), error: message })
        )
        return "retry-scheduled" as Outcome
      })

    /** Record the provider's answer to a refund; the inbox row (when given) goes into the same transaction. */
    const recordRefund = (order: Order, refund: Refund, result: RefundResult, messageId: string | undefined) =>
      Effect.gen(function*() {
        const base = {
          commandId: deriveId(refund.refundId, "result") as EventId,
          orderId: order.orderId,
          refundId: refund.refundId,
          at: new Date(yield* Clock.currentTimeMillis)
        }
        const command = result.outcome === "succeeded"
          ? new RecordRefundSucceeded(base, { disableValidation: true })
          : new RecordRefundFailed({ ...base, reason: (result.reason ?? "refused by the provider").slice(0, 500) }, { disableValidation: true })
        if (!(yield* appendResult(command, messageId))) return "processed" as Outcome
        yield* Metric.increment(result.outcome === "succeeded" ? counters.refundsSucceeded : counters.refundsFailed)
        yield* Effect.logInfo("refund result").pipe(
          Effect.annotateLogs({
            type: "REFUND_RESULT",
            orderId: order.orderId,
            refundId: refund.refundId,
            outcome: result.outcome,
            providerRefundId: result.providerRefundId,
            ...(result.reason ? { reason: result.reason } : {})
          })
        )
        return "processed" as Outcome
      })

    /** Whether the consumer finished this event already (skipped, logged and counted); else it is counted as processed. */
    const isDuplicate = (eventId: string, orderId: OrderId) =>
      Effect.gen(function*() {
        if (yield* inbox.isProcessed(consumer, eventId)) {
          yield* Metric.increment(counters.duplicatesSkipped)
          yield* Effect.logInfo("duplicate event skipped").pipe(
            Effect.annotateLogs({ type: "DUPLICATE_EVENT", orderId, eventId })
          )
          return true
        }
        yield* Metric.increment(counters.eventsProcessed)
        return false
      })

    /** Refund a pending refund and record the answer, or the failed pass. */
    const refundPass = (order: Order, refund: Refund, messageId: string | undefined) =>
      call(
        gateway.refund({
          idempotencyKey: refund.refundId,
          orderId: order.orderId,
          amountMinor: refund.amount.minor,
          currency: refund.amount.currency
        }),
        order,
        "PaymentProcessor.refund",
        { "refund.id": refund.refundId },
        { refundId: refund.refundId }
      ).pipe(
        Effect.matchEffect({
          onFailure: (e) => refundFailed(order, refund, e),
          onSuccess: (result) =>
            crash.hit("worker.afterRefundBeforeCommit").pipe(Effect.zipRight(recordRefund(order, refund, result, messageId)))
        })
      )

    /** A RefundRequested event (from Kafka, or re-driven): refund it unless it is settled already. */
    const handleRefund = (eventId: string, orderId: OrderId, refundId: RefundId) =>
      Effect.gen(function*() {
        if (yield* isDuplicate(eventId, orderId)) return "duplicate" as Outcome
        const order = yield* actors.load(orderId)
        const refund = order?.refunds.find((r) => r.refundId === refundId)
        if (order === undefined || refund === undefined || refund.status !== "pending") {
          yield* inbox.markProcessed(consumer, eventId)
          return "processed" as Outcome
        }
        return yield* refundPass(order, refund, eventId)
      })

    /** Charge a PAYMENT_PENDING order and record the answer, or the failed pass. */
    const pay = (order: Order, messageId: string | undefined) =>
      charge(order).pipe(
        Effect.matchEffect({
          onFailure: (e) => failed(order, e),
          onSuccess: (result) =>
            crash.hit("worker.afterChargeBeforeCommit").pipe(Effect.zipRight(record(order, result, messageId)))
        })
      )

    /** An OrderPlaced event (from Kafka, or re-driven): start the payment and charge it. */
    const handle = (eventId: string, orderId: OrderId) =>
      Effect.gen(function*() {
        if (yield* isDuplicate(eventId, orderId)) return "duplicate" as Outcome
        const started = yield* actors.execute(
          new StartPayment({
            commandId: deriveId(eventId, "start") as EventId,
            orderId,
            paymentId: deriveId(eventId, "payment") as PaymentId,
            at: new Date(yield* Clock.currentTimeMillis)
          })
        ).pipe(Effect.catchTag("ConcurrencyConflict", Effect.die), rejectedAsValue)
        if (Either.isLeft(started) || started.right.order.status !== "PAYMENT_PENDING") {
          // cancelled before payment, or already settled: nothing to charge
          yield* inbox.markProcessed(consumer, eventId)
          return "processed" as Outcome
        }
        return yield* pay(started.right.order, eventId)
      })

    return {
      consumer,
      handle,
      handleRefund,
      /**
       * Drive the refunds of an order the pipeline left behind (the scheduler picks an order once one of its
       * refunds is due, or was never tried — its message lost or parked): every pending one is refunded again with
       * its id as the key (one not due yet as well: the key makes an early call harmless). A parked one is the
       * operator's (its dead letter's replay drives it).
       */
      redriveRefunds: (orderId: OrderId) =>
        Effect.gen(function*() {
          const order = yield* actors.load(orderId)
          let outcome: Outcome = "ignored"
          for (const refund of order?.refunds ?? []) {
            if (refund.status !== "pending" || refund.parked) continue
            outcome = yield* refundPass(order!, refund, undefined)
          }
          return outcome
        }),
      /**
       * Drive an order the pipeline left behind (a due retry, a lost or parked message): CREATED starts its
       * payment as its OrderPlaced would; PAYMENT_PENDING charges again with its payment id (same key).
       */
      redrive: (orderId: OrderId) =>
        Effect.gen(function*() {
          const order = yield* actors.load(orderId)
          if (order?.status === "CREATED") {
            const [placed] = yield* store.readStream(orderId)
            return placed === undefined ? "ignored" as Outcome : yield* handle(placed.event.eventId, orderId)
          }
          if (order?.status === "PAYMENT_PENDING") return yield* pay(order, undefined)
          return "ignored" as Outcome
        }),
      /**
       * Ask the provider about the parked refunds of an order, refunding nothing (PaymentScheduler.ts): one it made
       * (or refused) after all — its answer lost — is recorded; one it has no record of stays parked for the operator.
       */
      checkParkedRefunds: (orderId: OrderId) =>
        Effect.gen(function*() {
          const order = yield* actors.load(orderId)
          for (const refund of order?.refunds ?? []) {
            if (refund.status !== "pending" || !refund.parked) continue
            const found = yield* gateway.find("refund", refund.refundId)
            if (found === undefined) {
              yield* Effect.logInfo("parked refund not made at the provider: left for the operator").pipe(
                Effect.annotateLogs({ type: "PARKED_CHECKED", orderId, refundId: refund.refundId })
              )
              continue
            }
            const succeeded = found.outcome === "succeeded"
            yield* recordRefund(order!, refund, {
              outcome: succeeded ? "succeeded" : "refused",
              providerRefundId: found.idempotencyKey,
              reason: succeeded ? undefined : "refused by the provider"
            }, undefined)
            yield* Metric.increment(counters.refundsReconciled)
            yield* Effect.logInfo("parked refund settled by the provider's record").pipe(
              Effect.annotateLogs({ type: "REFUND_RECONCILED", orderId, refundId: refund.refundId, outcome: found.outcome })
            )
          }
        }),
      /** Record the provider's answer for a PAYMENT_PENDING order (a parked payment's: PaymentScheduler.ts). */
      record: (order: Order, result: ChargeResult) => record(order, result, undefined),
      breakerState: breaker.state,
      breakerRefusedFor: breaker.refusedFor
    } as const
  })
}) {}
