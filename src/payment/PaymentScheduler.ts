/**
 * The payment scheduler of the worker role (docs/ARCHITECTURE.md "Payment worker"): whatever happened to an
 * order's message, the order is driven to an end. Every `RETRY_POLL_MS` it takes, from the `orders` projection
 * joined to each order's last event:
 * - PAYMENT_PENDING orders whose last event is a PaymentRetryScheduled that is due: charged again (same key);
 * - orders stuck in CREATED (their OrderPlaced never handled) or PAYMENT_PENDING with no retry scheduled, for
 *   longer than `SWEEP_AFTER_MS`: re-driven as their message would have been (a lost, parked or skipped one).
 * - orders with a pending refund whose retry is due, or that was never tried for longer than `SWEEP_AFTER_MS`
 *   (the `orders` row's refund_due_at / refund_waiting_since): refunded again with the refund id as the key.
 * A pass that drove a full batch (`SCHEDULER_BATCH`) without a failure is followed by the next one at once, so
 * a backlog (the retries due after a long breaker opening) drains at the provider's pace, not a batch per poll.
 * A payment parked by its last attempt (a PaymentRetryScheduled without due time) is the operator's: it gets a
 * dead letter (the order's OrderPlaced message), and its replay drives it again. Once `SWEEP_AFTER_MS` after
 * the park (when any call then in flight has ended), each scheduler asks the provider once for the key's stored
 * result (`makeParkedCheck`, charging nothing): a charge taken after all — its answer lost, or by a copy in
 * another worker that died before recording it — settles the order; none leaves it parked.
 * Several workers may run it at once: the derived ids and the provider's idempotency key make that harmless.
 */
import { SqlClient } from "@effect/sql"
import { Cause, Clock, Config, Duration, Effect, Layer, Metric, Schedule } from "effect"
import { DeadLetters } from "../deadletter/DeadLetters.js"
import type { OrderId } from "../domain/Order.js"
import { EventStore } from "../eventstore/EventStore.js"
import { toMessage } from "../kafka/Envelope.js"
import { Kafka } from "../kafka/Kafka.js"
import { OrderActors } from "../actor/OrderActors.js"
import { PaymentGateway } from "./PaymentGateway.js"
import { paymentsReconciled } from "./PaymentMetrics.js"
import { PaymentProcessor } from "./PaymentProcess.js"
import { orStoreError } from "../Infrastructure.js"

export const SchedulerConfig = Config.all({
  pollMs: Config.integer("RETRY_POLL_MS").pipe(Config.withDefault(1000)),
  sweepAfterMs: Config.integer("SWEEP_AFTER_MS").pipe(Config.withDefault(30_000)),
  batch: Config.integer("SCHEDULER_BATCH").pipe(Config.withDefault(200))
})

export const redriven = Metric.counter("payment_scheduler_redriven_total", {
  description: "orders the scheduler drove (due retries and stuck orders)",
  incremental: true
})
export const schedulerErrors = Metric.counter("payment_scheduler_errors_total", {
  description: "re-drives that failed (retried at the next pass)",
  incremental: true
})

/** The scheduler's work (a pass, or one order's) never fails: a failure is logged and counted, and is false; the
 * next pass tries again. */
const failed = (message: string, orderId?: OrderId) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A | false, never, R> =>
  Effect.catchAllCause(self, (cause) =>
    Cause.isInterruptedOnly(cause) ? Effect.failCause(cause) as Effect.Effect<never> : Effect.logWarning(message).pipe(
      Effect.annotateLogs({ type: "PROCESSING_ERROR", role: "scheduler", ...(orderId ? { orderId } : {}), error: Cause.pretty(cause).slice(0, 500) }),
      Effect.zipRight(Metric.increment(schedulerErrors)),
      Effect.as(false as const)
    ))

/**
 * What the scheduler does to one order it picked: re-drive it (charge again with its payment id, or start a
 * CREATED order's payment); a payment parked by its last attempt gets a dead letter (its OrderPlaced message).
 * Never fails: a failed re-drive is logged and left for the next pass (false). (The property suite drives it too.)
 */
export const makeRedriver = Effect.gen(function*() {
  const store = yield* EventStore
  const kafka = yield* Kafka
  const processor = yield* PaymentProcessor
  const deadLetters = yield* DeadLetters

  /** The dead letter of a parked payment: its OrderPlaced message, so that a replay drives it again (of a
   * parked refund: its RefundRequested message). */
  const park = (orderId: OrderId, attempts: number, error: string, refundId: string | undefined) =>
    Effect.gen(function*() {
      const stream = yield* store.readStream(orderId)
      const placed = refundId === undefined
        ? stream[0]
        : stream.find((r) => r.event._tag === "RefundRequested" && r.event.refundId === refundId)
      if (placed === undefined) return
      const message = toMessage(placed)
      yield* deadLetters.park({
        consumer: processor.consumer,
        message: {
          topic: kafka.topics.orderEvents,
          partition: -1,
          offset: `payment/${attempts}/${placed.event.eventId}`,
          key: Buffer.from(message.key),
          value: Buffer.from(message.value),
          headers: Object.entries(message.headers).map(([k, v]) => [k, Buffer.from(v)] as const)
        },
        error: `payment provider unavailable: ${error}`,
        attempts
      })
    })

  return (orderId: OrderId, why: "RETRY_DUE" | "SWEEP" | "REFUND_DUE"): Effect.Effect<boolean> =>
    Effect.logInfo("re-driving an order").pipe(
      Effect.annotateLogs({ type: why, orderId }),
      Effect.zipRight(Metric.increment(redriven)),
      Effect.zipRight(
        why === "REFUND_DUE" ? processor.redriveRefunds(orderId) : processor.redrive(orderId)
      ),
      Effect.catchTag("PaymentParked", (e) => park(orderId, e.attempts, e.message, e.refundId)),
      Effect.as(true),
      failed("re-drive failed; next pass retries", orderId)
    )
})

/**
 * Ask the provider about one parked payment (last event a PaymentRetryScheduled without due time), charging
 * nothing: a result it has for the key — a charge whose answer was lost, or taken by another worker's copy that
 * died before recording it — is recorded; none leaves the payment parked for the operator. True once the
 * provider answered (or the order is not parked), false when it could not (asked again at the next pass).
 */
export const makeParkedCheck = Effect.gen(function*() {
  const actors = yield* OrderActors
  const store = yield* EventStore
  const gateway = yield* PaymentGateway
  const processor = yield* PaymentProcessor
  const check = (orderId: OrderId) =>
    Effect.gen(function*() {
      const order = yield* actors.load(orderId)
      const last = (yield* store.readStream(orderId)).at(-1)?.event
      if (order?.status !== "PAYMENT_PENDING" || last?._tag !== "PaymentRetryScheduled" || last.dueAt !== null) return
      const result = yield* gateway.lookup(order.paymentId!)
      if (result === undefined) {
        return yield* Effect.logInfo("parked payment not charged at the provider: left for the operator").pipe(
          Effect.annotateLogs({ type: "PARKED_CHECKED", orderId })
        )
      }
      yield* processor.record(order, result)
      yield* Metric.increment(paymentsReconciled)
      yield* Effect.logInfo("parked payment settled by the provider's result").pipe(
        Effect.annotateLogs({ type: "PAYMENT_RECONCILED", orderId, outcome: result.outcome, chargeId: result.chargeId })
      )
    })
  return (orderId: OrderId): Effect.Effect<boolean> =>
    check(orderId).pipe(Effect.as(true), failed("parked payment check failed; next pass retries", orderId))
})

export const PaymentSchedulerLive = Layer.scopedDiscard(
  Effect.gen(function*() {
    const config = yield* SchedulerConfig
    const sql = yield* SqlClient.SqlClient
    const processor = yield* PaymentProcessor
    const drive = yield* makeRedriver
    const checkParked = yield* makeParkedCheck
    yield* Metric.incrementBy(redriven, 0)
    yield* Metric.incrementBy(schedulerErrors, 0)

    // "now" is the worker's Clock, not the database's now(): dueAt and updated_at were written from the
    // workers' and the API's clocks, so this compares like with like (and tests drive it with TestClock)
    const due = (now: string) =>
      sql<{ order_id: string; why: "RETRY_DUE" | "SWEEP" }>`
      SELECT o.order_id, CASE WHEN e.type = 'PaymentRetryScheduled' THEN 'RETRY_DUE' ELSE 'SWEEP' END AS why
      FROM orders o JOIN events e ON e.stream_id = o.order_id AND e.version = o.version
      WHERE o.status IN ('CREATED', 'PAYMENT_PENDING')
        AND CASE WHEN e.type = 'PaymentRetryScheduled'
                 THEN (e.data->>'dueAt') IS NOT NULL AND (e.data->>'dueAt')::timestamptz <= ${now}::timestamptz
                 ELSE o.updated_at < ${now}::timestamptz - ${config.sweepAfterMs} * interval '1 millisecond' END
      ORDER BY o.updated_at LIMIT ${config.batch}`.pipe(orStoreError)

    // refunds: a due retry, or a refund never tried for longer than SWEEP_AFTER_MS (its message lost or parked)
    const refundsDue = (now: string) =>
      sql<{ order_id: string; why: "REFUND_DUE" }>`
      SELECT order_id, 'REFUND_DUE' AS why FROM orders
      WHERE refund_due_at <= ${now}::timestamptz
         OR refund_waiting_since < ${now}::timestamptz - ${config.sweepAfterMs} * interval '1 millisecond'
      ORDER BY least(refund_due_at, refund_waiting_since) LIMIT ${config.batch}`.pipe(orStoreError)

    /** One pass; true when it drove a full batch without a failure (more may be waiting: go on at once). */
    const pass = Effect.gen(function*() {
      // while the breaker is open, due retries wait (a call would fail fast and cost nothing but churn)
      if ((yield* processor.breakerRefusedFor) > 0) return false
      const now = new Date(yield* Clock.currentTimeMillis).toISOString()
      const rows = [...yield* due(now), ...yield* refundsDue(now)]
      const driven = yield* Effect.forEach(rows, (r) => drive(r.order_id as OrderId, r.why), { concurrency: 16 })
      return rows.length >= config.batch && driven.every(Boolean)
    }).pipe(failed("scheduler pass failed"))
    // (at most 50 passes in a row: a backlog whose re-drives keep it due must not spin on the database)
    const drain = Effect.repeat(pass, { while: (full) => full, times: 49 })

    // parked payments in the order they were parked, each checked once by this scheduler: a cursor over
    // (updated_at, order_id), from the start of the log when the process starts
    let checkedUntil = { at: "-infinity", orderId: "00000000-0000-0000-0000-000000000000" }
    const parked = (now: string) =>
      sql<{ order_id: string; at: string }>`
      SELECT o.order_id, o.updated_at::text AS at
      FROM orders o JOIN events e ON e.stream_id = o.order_id AND e.version = o.version
      WHERE o.status = 'PAYMENT_PENDING' AND e.type = 'PaymentRetryScheduled' AND (e.data->>'dueAt') IS NULL
        AND o.updated_at < ${now}::timestamptz - ${config.sweepAfterMs} * interval '1 millisecond'
        AND (o.updated_at, o.order_id) > (${checkedUntil.at}::timestamptz, ${checkedUntil.orderId}::uuid)
      ORDER BY o.updated_at, o.order_id LIMIT ${config.batch}`.pipe(orStoreError)
    const parkedPass = Effect.gen(function*() {
      if ((yield* processor.breakerRefusedFor) > 0) return
      for (const r of yield* parked(new Date(yield* Clock.currentTimeMillis).toISOString())) {
        // one at a time, in order: the cursor passes only what the provider answered
        if (!(yield* checkParked(r.order_id as OrderId))) return
        checkedUntil = { at: r.at, orderId: r.order_id }
      }
    }).pipe(failed("scheduler pass failed"))

    // parked refunds the same way, by the orders row's refund_parked_since, each checked once per scheduler
    let refundsCheckedUntil = { at: "-infinity", orderId: "00000000-0000-0000-0000-000000000000" }
    const parkedRefunds = (now: string) =>
      sql<{ order_id: string; at: string }>`
      SELECT order_id, refund_parked_since::text AS at FROM orders
      WHERE refund_parked_since < ${now}::timestamptz - ${config.sweepAfterMs} * interval '1 millisecond'
        AND (refund_parked_since, order_id) > (${refundsCheckedUntil.at}::timestamptz, ${refundsCheckedUntil.orderId}::uuid)
      ORDER BY refund_parked_since, order_id LIMIT ${config.batch}`.pipe(orStoreError)
    const parkedRefundsPass = Effect.gen(function*() {
      if ((yield* processor.breakerRefusedFor) > 0) return
      for (const r of yield* parkedRefunds(new Date(yield* Clock.currentTimeMillis).toISOString())) {
        const checked = yield* processor.checkParkedRefunds(r.order_id as OrderId).pipe(
          Effect.as(true),
          failed("parked refund check failed; next pass retries", r.order_id as OrderId)
        )
        if (!checked) return
        refundsCheckedUntil = { at: r.at, orderId: r.order_id }
      }
    }).pipe(failed("scheduler pass failed"))
    yield* Effect.forkScoped(Effect.repeat(Effect.zipRight(drain, Effect.zipRight(parkedPass, parkedRefundsPass)), Schedule.spaced(Duration.millis(config.pollMs))))
  })
)
