/**
 * The worker role's consumer (docs/ARCHITECTURE.md "Payment worker"): order events from Kafka through the keyed
 * consumer (src/kafka/KeyedConsumer.ts) into the payment process (PaymentProcess.ts). Nothing a producer can put
 * on the topic stops it: decoding is total (Envelope.fromMessage), whatever cannot be handled is parked with its
 * exact bytes, and every failure inside one message's handling stays with that message — a transient failure
 * (database or broker unavailable, by src/Infrastructure.ts) is retried until it heals, a permanent one (the
 * database refuses the statement on every try, a bug) is parked with its SQLSTATE. Parking never fails on content; when it
 * fails at all (database down), the message is retried, never skipped.
 */
import { Config, Effect, Either, Layer, Metric } from "effect"
import { ShutdownBudgetConfig } from "../Shutdown.js"
import { CrashPoints } from "../CrashPoints.js"
import { DeadLetters } from "../deadletter/DeadLetters.js"
import type { OrderId } from "../domain/Order.js"
import { schemaVersions } from "../eventstore/EventCodec.js"
import { fromMessage } from "../kafka/Envelope.js"
import { type IncomingMessage, Kafka } from "../kafka/Kafka.js"
import { contained, keyText, skipsTypes, traceHeaders } from "../kafka/Handling.js"
import { type ConsumerStatus, runKeyedConsumer } from "../kafka/KeyedConsumer.js"
import { traced, withRemoteParent } from "../observability/Tracing.js"
import { Readiness } from "../Readiness.js"
import { PaymentProcessor } from "./PaymentProcess.js"

export const ConsumerConfig = Config.all({
  maxInFlightPerPartition: Config.integer("CONSUMER_MAX_IN_FLIGHT").pipe(Config.withDefault(500)),
  /** Messages handled at once by this worker: a bound on bursts, well above what the provider and the database take. */
  concurrency: Config.integer("CONSUMER_CONCURRENCY").pipe(Config.withDefault(512)),
  commitIntervalMs: Config.integer("CONSUMER_COMMIT_INTERVAL_MS").pipe(Config.withDefault(200)),
  shutdown: ShutdownBudgetConfig
})

export const messageRetries = Metric.counter("worker_message_retries_total", {
  description: "message handlings retried after an infrastructure failure (database, broker)",
  incremental: true
})

/** The event types the worker does nothing with (all but OrderPlaced and RefundRequested): a message whose `event-type` header names one is skipped
 * before it is parsed. A message without that header, or naming anything else, is decoded (and parked when it
 * cannot be understood). */
const notForPayments = new Set(Object.keys(schemaVersions).filter((type) => type !== "OrderPlaced" && type !== "RefundRequested"))
export const skipsMessage = skipsTypes(notForPayments)

/** Handle one raw message of the order-events topic: total, never fails (interruption aside). */
export const makeMessageHandler = Effect.gen(function*() {
  const processor = yield* PaymentProcessor
  const deadLetters = yield* DeadLetters
  const crash = yield* CrashPoints

  const park = (message: IncomingMessage, error: string, attempts: number) =>
    deadLetters.park({ consumer: processor.consumer, message, error, attempts })

  const once = (message: IncomingMessage) =>
    Effect.suspend(() => {
      const decoded = fromMessage(message.value, keyText(message))
      if (Either.isLeft(decoded)) return park(message, decoded.left, 0)
      const { envelope, event } = decoded.right
      // only OrderPlaced and RefundRequested start work here: the other events need no inbox lookup
      if (event._tag !== "OrderPlaced" && event._tag !== "RefundRequested") return Effect.void
      const work = event._tag === "OrderPlaced"
        ? processor.handle(envelope.eventId, envelope.orderId as OrderId)
        : processor.handleRefund(envelope.eventId, envelope.orderId as OrderId, event.refundId)
      return work.pipe(
        Effect.asVoid,
        Effect.catchTag("PaymentParked", (e) => park(message, `payment provider unavailable: ${e.message}`, e.attempts)),
        Effect.zipRight(crash.hit("worker.afterCommitBeforeOffsetCommit")),
        // one order is one trace: continued from the trace context the relay put in the headers
        traced("PaymentWorker.consume", {
          kind: "consumer",
          attributes: { "order.id": envelope.orderId, "event.id": envelope.eventId, "event.type": envelope.type }
        }),
        withRemoteParent(traceHeaders(message))
      )
    })

  return (message: IncomingMessage): Effect.Effect<void> =>
    contained(message, once(message), (reason) => park(message, reason, 0), messageRetries)
})

/** The worker role: the keyed consumer of order events, its readiness registered. */
export const PaymentWorkerLive = Layer.scopedDiscard(
  Effect.gen(function*() {
    const kafka = yield* Kafka
    const processor = yield* PaymentProcessor
    const readiness = yield* Readiness
    const config = yield* ConsumerConfig
    const crash = yield* CrashPoints
    yield* Metric.incrementBy(messageRetries, 0)
    const handle = yield* makeMessageHandler
    const status = yield* runKeyedConsumer({
      groupId: processor.consumer,
      topics: [kafka.topics.orderEvents],
      handle,
      maxInFlightPerPartition: config.maxInFlightPerPartition,
      maxConcurrent: config.concurrency,
      commitIntervalMs: config.commitIntervalMs,
      skip: skipsMessage,
      shutdown: config.shutdown,
      // only where a test can arm it: otherwise a fetch is taken without a fiber
      ...(crash.armable ? { beforeBatch: crash.hit("worker.consumerBatch") } : {})
    })
    yield* readiness.register("consumer", Effect.map(status, (s: ConsumerStatus) => ({
      ok: s.state === "consuming",
      ...(s.state === "consuming" ? {} : { reason: s.state }),
      detail: s
    })))
    yield* Effect.logInfo("payment worker started").pipe(
      Effect.annotateLogs({ type: "STARTUP", role: "worker", group: processor.consumer, breaker: processor.breakerState() })
    )
  })
)
