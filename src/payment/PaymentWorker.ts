/**
 * The payment worker (DESIGN §8). For each OrderPlaced on the order-events topic:
 *   inbox check → StartPayment (PAYMENT_PENDING) → charge, idempotency key = payment id → RecordPayment…
 *   (PAID / FAILED) appended together with the inbox row, in one transaction.
 * Ids are derived from the event id, so a redelivered message issues the very same commands and charge: it
 * can never charge twice (the provider answers a known key with its first result) nor append twice.
 *
 * Transient provider errors are retried with exponential backoff and jitter, up to `maxAttempts`; then the
 * message is parked as a dead letter. Undecodable messages are parked at once. The circuit breaker stops calls
 * while the provider is down; waiting on it costs no attempt. Within a batch, messages of different orders run
 * concurrently and those of one order in sequence; the offset is committed only once the whole batch is
 * finished (processed or parked), so it never passes an unfinished message.
 * The sweeper re-drives orders left in PAYMENT_PENDING past a deadline (e.g. their message was parked).
 */
import { SqlClient } from "@effect/sql"
import { Config, Duration, Effect, Either, Layer, Metric, Runtime, Schedule, Schema } from "effect"
import { OrderActors } from "../actor/OrderActors.js"
import { CrashPoints } from "../CrashPoints.js"
import { DeadLetters } from "../deadletter/DeadLetters.js"
import {
  type EventId,
  type Order,
  type OrderId,
  type PaymentId,
  RecordPaymentFailed,
  RecordPaymentSucceeded,
  StartPayment
} from "../domain/Order.js"
import { deriveId } from "../Ids.js"
import { Inbox } from "../inbox/Inbox.js"
import { fromMessage } from "../kafka/Envelope.js"
import { type EachBatchPayload, headerString, Kafka } from "../kafka/Kafka.js"
import { traced, withRemoteParent } from "../observability/Tracing.js"
import { OrdersReadModel } from "../projection/OrdersProjection.js"
import { breakerOpened, makeCircuitBreaker } from "./CircuitBreaker.js"
import { type ChargeResult, PaymentGateway, type PaymentUnavailable } from "./PaymentGateway.js"

export const WorkerConfig = Config.all({
  groupId: Config.string("PAYMENT_WORKER_GROUP").pipe(Config.withDefault("payment-worker")),
  maxAttempts: Config.integer("PAYMENT_MAX_ATTEMPTS").pipe(Config.withDefault(5)),
  retryBaseMs: Config.integer("PAYMENT_RETRY_BASE_MS").pipe(Config.withDefault(100)),
  breakerThreshold: Config.integer("BREAKER_THRESHOLD").pipe(Config.withDefault(3)),
  breakerCooldownMs: Config.integer("BREAKER_COOLDOWN_MS").pipe(Config.withDefault(2000)),
  sweepIntervalMs: Config.integer("SWEEP_INTERVAL_MS").pipe(Config.withDefault(5000)),
  sweepAfterMs: Config.integer("SWEEP_AFTER_MS").pipe(Config.withDefault(30_000))
})
export type WorkerConfig = Config.Config.Success<typeof WorkerConfig>

export const eventsProcessed = Metric.counter("worker_events_processed_total", { incremental: true })
export const duplicatesSkipped = Metric.counter("worker_duplicates_skipped_total", { incremental: true })
export const paymentsSucceeded = Metric.counter("payments_succeeded_total", { incremental: true })
export const paymentsFailed = Metric.counter("payments_failed_total", { incremental: true })
export const paymentRetries = Metric.counter("payment_retries_total", { incremental: true })

export class ChargeExhausted extends Schema.TaggedError<ChargeExhausted>()("ChargeExhausted", {
  attempts: Schema.Int,
  message: Schema.String
}) {}

export type Outcome = "processed" | "duplicate" | "ignored"

/** What the worker does with one message, apart from Kafka: usable by the consumer, the sweeper and tests. */
export class PaymentProcessor extends Effect.Service<PaymentProcessor>()("PaymentProcessor", {
  effect: Effect.gen(function*() {
    const config = yield* WorkerConfig
    const actors = yield* OrderActors
    const inbox = yield* Inbox
    const gateway = yield* PaymentGateway
    const crash = yield* CrashPoints
    const breaker = yield* makeCircuitBreaker({
      threshold: config.breakerThreshold,
      cooldown: Duration.millis(config.breakerCooldownMs)
    })
    const consumer = config.groupId
    // counters exist (at 0) from the start, so /metrics always lists them
    for (const c of [eventsProcessed, duplicatesSkipped, paymentsSucceeded, paymentsFailed, paymentRetries, breakerOpened]) {
      yield* Metric.incrementBy(c, 0)
    }

    const charge = (order: Order) =>
      Effect.gen(function*() {
        let attempt = 0
        const call = breaker.run(
          gateway.charge({
            idempotencyKey: order.paymentId!,
            orderId: order.orderId,
            amountMinor: order.amount.minor,
            currency: order.amount.currency
          }).pipe(Effect.ensuring(Effect.sync(() => attempt++))),
          (e: PaymentUnavailable) => e._tag === "PaymentUnavailable"
        )
        // waiting for the breaker is not an attempt; a waiter sleeps until the breaker may let a call through
        // (not a fixed poll: with thousands of messages waiting, polling every 100 ms was a CPU sink)
        const served: Effect.Effect<ChargeResult, PaymentUnavailable> = call.pipe(
          Effect.catchTag("BreakerOpen", (e) =>
            Effect.sleep(Duration.millis(Math.max(10, e.retryAfterMs))).pipe(Effect.zipRight(Effect.suspend(() => served))))
        )
        const once = served.pipe(
          Effect.tapError((e) =>
            attempt < config.maxAttempts
              ? Effect.logInfo("payment retry scheduled").pipe(
                Effect.annotateLogs({ type: "RETRY_SCHEDULED", orderId: order.orderId, attempt, error: e.message }),
                Effect.zipRight(Metric.increment(paymentRetries))
              )
              : Effect.void
          )
        )
        return yield* once.pipe(
          Effect.retry(
            Schedule.exponential(Duration.millis(config.retryBaseMs)).pipe(
              Schedule.jittered,
              Schedule.intersect(Schedule.recurs(config.maxAttempts - 1))
            )
          ),
          Effect.mapError((e) => new ChargeExhausted({ attempts: attempt, message: e.message }))
        )
      }).pipe(traced("PaymentProcessor.charge", { attributes: { "order.id": order.orderId, "payment.id": order.paymentId ?? "" } }))

    /** Record the provider's answer; the inbox row (when given) goes into the same transaction. */
    const record = (order: Order, result: ChargeResult, messageId: string | undefined) =>
      Effect.gen(function*() {
        const paymentId = order.paymentId as PaymentId
        const base = {
          commandId: deriveId(paymentId, "result") as EventId,
          orderId: order.orderId,
          paymentId,
          at: new Date()
        }
        // derived ids and the order's own fields: nothing left to validate
        const command = result.outcome === "succeeded"
          ? new RecordPaymentSucceeded(base, { disableValidation: true })
          : new RecordPaymentFailed({ ...base, reason: "declined by the provider" }, { disableValidation: true })
        const done = yield* actors.execute(command, messageId ? { inbox: { consumer, messageId } } : {}).pipe(
          Effect.catchTag("ConcurrencyConflict", Effect.die),
          Effect.either
        )
        if (Either.isLeft(done) || done.right.events.length === 0) {
          // recorded already (by the sweeper, or before a crash): nothing appended, so write the inbox row alone
          if (messageId) yield* inbox.markProcessed(consumer, messageId)
          return
        }
        yield* Metric.increment(result.outcome === "succeeded" ? paymentsSucceeded : paymentsFailed)
        yield* Effect.logInfo("payment result").pipe(
          Effect.annotateLogs({ type: "PAYMENT_RESULT", orderId: order.orderId, outcome: result.outcome, chargeId: result.chargeId })
        )
      })

    const handle = (eventId: string, orderId: OrderId, type: string) =>
      Effect.gen(function*() {
        // only OrderPlaced starts work here: the other events need no inbox lookup
        if (type !== "OrderPlaced") return "ignored" as Outcome
        if (yield* inbox.isProcessed(consumer, eventId)) {
          yield* Metric.increment(duplicatesSkipped)
          yield* Effect.logInfo("duplicate event skipped").pipe(
            Effect.annotateLogs({ type: "DUPLICATE_EVENT", orderId, eventId, eventType: type })
          )
          return "duplicate" as Outcome
        }
        yield* Metric.increment(eventsProcessed)
        const started = yield* actors.execute(
          new StartPayment({
            commandId: deriveId(eventId, "start") as EventId,
            orderId,
            paymentId: deriveId(eventId, "payment") as PaymentId,
            at: new Date()
          })
        ).pipe(Effect.catchTag("ConcurrencyConflict", Effect.die), Effect.either)
        if (Either.isLeft(started) || started.right.order.status !== "PAYMENT_PENDING") {
          // cancelled before payment, or already settled: nothing to charge
          yield* inbox.markProcessed(consumer, eventId)
          return "processed" as Outcome
        }
        const order = started.right.order
        const result = yield* charge(order)
        yield* crash.hit("worker.afterChargeBeforeCommit")
        yield* record(order, result, eventId)
        return "processed" as Outcome
      })

    return {
      consumer,
      handle,
      /** Finish an order stuck in PAYMENT_PENDING: charge again with its payment id (same key), record. */
      redrive: (order: Order) =>
        charge(order).pipe(Effect.flatMap((result) => record(order, result, undefined))),
      breakerState: breaker.state
    } as const
  })
}) {}

const eventKey = (value: string | undefined) => value ?? ""

/** The worker role: consume order events, one batch per partition at a time. */
export const PaymentWorkerLive = Layer.scopedDiscard(
  Effect.gen(function*() {
    const kafka = yield* Kafka
    const processor = yield* PaymentProcessor
    const deadLetters = yield* DeadLetters
    const crash = yield* CrashPoints
    const runtime = yield* Effect.runtime<never>()
    const consumer = yield* kafka.consumer(processor.consumer, [kafka.topics.orderEvents]).pipe(Effect.orDie)

    const handleMessage = (payload: EachBatchPayload, message: EachBatchPayload["batch"]["messages"][number]) => {
      const value = message.value?.toString() ?? ""
      const headers = Object.fromEntries(
        Object.keys(message.headers ?? {}).map((k) => [k, headerString(message.headers, k) ?? ""])
      )
      const park = (error: string, attempts: number) =>
        deadLetters.park({
          consumer: processor.consumer,
          topic: payload.batch.topic,
          partition: payload.batch.partition,
          offset: message.offset,
          key: message.key?.toString() ?? null,
          value,
          headers,
          error,
          attempts
        })
      const decoded = fromMessage(value)
      if (Either.isLeft(decoded)) return park(decoded.left, 0)
      const { envelope } = decoded.right
      return Effect.logDebug("event received").pipe(
        Effect.annotateLogs({ type: "EVENT_RECEIVED", orderId: envelope.orderId, eventId: envelope.eventId, eventType: envelope.type }),
        Effect.zipRight(processor.handle(envelope.eventId, envelope.orderId as OrderId, envelope.type)),
        Effect.catchTag("ChargeExhausted", (e) => park(`payment provider unavailable: ${e.message}`, e.attempts)),
        Effect.asVoid,
        traced("PaymentWorker.consume", {
          kind: "consumer",
          attributes: { "order.id": envelope.orderId, "event.id": envelope.eventId, "event.type": envelope.type }
        }),
        withRemoteParent(headers)
      )
    }

    const handleBatch = (payload: EachBatchPayload) =>
      Effect.gen(function*() {
        const { batch } = payload
        if (batch.messages.length === 0) return
        const byKey = new Map<string, Array<(typeof batch.messages)[number]>>()
        for (const m of batch.messages) {
          const key = eventKey(m.key?.toString())
          const list = byKey.get(key)
          if (list) list.push(m)
          else byKey.set(key, [m])
        }
        const heartbeats = yield* Effect.forkScoped(
          Effect.repeat(Effect.promise(() => payload.heartbeat()).pipe(Effect.ignore), Schedule.spaced(Duration.seconds(1)))
        )
        yield* Effect.forEach(
          byKey.values(),
          (messages) => Effect.forEach(messages, (m) => handleMessage(payload, m), { discard: true }),
          { concurrency: "unbounded", discard: true }
        )
        yield* heartbeats.interruptAsFork(heartbeats.id())
        yield* crash.hit("worker.afterCommitBeforeOffsetCommit")
        const last = batch.messages[batch.messages.length - 1]!.offset
        payload.resolveOffset(last)
        yield* Effect.promise(() =>
          consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }])
        )
      }).pipe(Effect.scoped)

    yield* Effect.promise(() =>
      consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 6,
        eachBatch: (payload) => Runtime.runPromise(runtime)(handleBatch(payload))
      })
    )
    yield* Effect.logInfo("payment worker started").pipe(
      Effect.annotateLogs({ type: "STARTUP", role: "worker", group: processor.consumer })
    )
  })
)

/** Re-drives orders stuck in PAYMENT_PENDING for longer than SWEEP_AFTER_MS, every SWEEP_INTERVAL_MS. */
export const SweeperLive = Layer.scopedDiscard(
  Effect.gen(function*() {
    const config = yield* WorkerConfig
    const sql = yield* SqlClient.SqlClient
    const readModel = yield* OrdersReadModel
    const processor = yield* PaymentProcessor
    const sweep = Effect.gen(function*() {
      const stuck = yield* sql<{ order_id: string }>`
        SELECT order_id FROM orders
        WHERE status = 'PAYMENT_PENDING' AND updated_at < now() - ${config.sweepAfterMs} * interval '1 millisecond'
        ORDER BY updated_at LIMIT 100`.pipe(Effect.orDie)
      yield* Effect.forEach(stuck, ({ order_id }) =>
        readModel.get(order_id as OrderId).pipe(
          Effect.flatMap((order) =>
            order._tag === "Some" && order.value.status === "PAYMENT_PENDING"
              ? Effect.logInfo("re-driving a stuck payment").pipe(
                Effect.annotateLogs({ type: "SWEEP", orderId: order_id }),
                Effect.zipRight(processor.redrive(order.value))
              )
              : Effect.void
          ),
          Effect.catchAll((e) => Effect.logWarning("sweep failed").pipe(Effect.annotateLogs({ type: "PROCESSING_ERROR", orderId: order_id, error: e.message })))
        ), { concurrency: 8, discard: true })
    })
    yield* Effect.forkScoped(Effect.repeat(sweep, Schedule.spaced(Duration.millis(config.sweepIntervalMs))))
  })
)
