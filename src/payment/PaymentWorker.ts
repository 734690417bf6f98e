/**
 * The worker role's consumer (docs/ARCHITECTURE.md "Payment worker"): order events from Kafka through the keyed
 * consumer (src/kafka/KeyedConsumer.ts) into the payment process (PaymentProcess.ts). Nothing a producer can put
 * on the topic stops it: decoding is total (Envelope.fromMessage), whatever cannot be handled is parked with its
 * exact bytes, and every failure inside one message's handling stays with that message — a transient failure
 * (database or broker unavailable, by src/Infrastructure.ts) is retried until it heals, a permanent one (the
 * database refuses the statement on every try, a bug) is parked with its SQLSTATE. Parking never fails on content; when it
 * fails at all (database down), the message is retried, never skipped.
 */
import { Cause, Config, Duration, Effect, Either, Layer, Metric, Schedule } from "effect"
import { ShutdownBudgetConfig } from "../Shutdown.js"
import { CrashPoints, isSimulatedCrash } from "../CrashPoints.js"
import { DeadLetters } from "../deadletter/DeadLetters.js"
import type { OrderId } from "../domain/Order.js"
import { schemaVersions } from "../eventstore/EventCodec.js"
import { fromMessage } from "../kafka/Envelope.js"
import { classify, StoreFailed } from "../Infrastructure.js"
import { type IncomingMessage, Kafka } from "../kafka/Kafka.js"
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

/**
 * Whether a failed handling is tried again (the failure heals by itself: the database or the broker unavailable,
 * by the one rule of src/Infrastructure.ts, or an order that kept changing under the actor) — or is permanent
 * (the database refuses the statement on every try, a bug) and the message is parked.
 */
export const retriesHandling = (cause: Cause.Cause<unknown>): boolean => {
  const failure = Cause.squash(cause)
  return (failure as { _tag?: unknown } | null)?._tag === "ConcurrencyConflict" || classify(failure).transient
}

/** The dead letter's error for a permanent failure: its SQLSTATE first when the database gave one. */
const parkReason = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.squash(cause)
  const { sqlState } = classify(failure)
  // a store failure's message says it all (the statement's error and its SQLSTATE); a bug gets its trace
  return failure instanceof StoreFailed
    ? `handling failed: ${failure.message}`.slice(0, 2000)
    : `handling failed${sqlState === undefined ? "" : ` [SQLSTATE ${sqlState}]`}: ${Cause.pretty(cause).slice(0, 2000)}`
}

/** The event types the worker does nothing with (all but OrderPlaced and RefundRequested): a message whose `event-type` header names one is skipped
 * before it is parsed. A message without that header, or naming anything else, is decoded (and parked when it
 * cannot be understood). */
const notForPayments = new Set(Object.keys(schemaVersions).filter((type) => type !== "OrderPlaced" && type !== "RefundRequested"))
export const skipsMessage = (message: IncomingMessage): boolean => {
  let type: string | undefined
  for (const [name, value] of message.headers) {
    if (name === "event-type") {
      // a repeated header is ambiguous: decode the message
      if (type !== undefined) return false
      type = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("utf8")
    }
  }
  return type !== undefined && notForPayments.has(type)
}

const keyText = (key: Uint8Array | null) => key === null ? null : Buffer.from(key).toString("utf8")

/** The trace headers of a message, as text (the last value of a repeated name). */
const headerText = (message: IncomingMessage) => {
  const out: Record<string, string> = {}
  for (const [name, value] of message.headers) {
    if (name === "traceparent" || name === "tracestate") out[name] = Buffer.from(value).toString("utf8")
  }
  return out
}

/** Handle one raw message of the order-events topic: total, never fails (interruption aside). */
export const makeMessageHandler = Effect.gen(function*() {
  const processor = yield* PaymentProcessor
  const deadLetters = yield* DeadLetters
  const crash = yield* CrashPoints

  const park = (message: IncomingMessage, error: string, attempts: number) =>
    deadLetters.park({ consumer: processor.consumer, message, error, attempts })

  const once = (message: IncomingMessage) =>
    Effect.suspend(() => {
      const decoded = fromMessage(message.value, keyText(message.key))
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
        withRemoteParent(headerText(message))
      )
    }).pipe(
      // a permanent failure (a statement the database refuses on every try, a bug) parks the message with its
      // cause as the error; a transient one is retried below; a simulated crash (tests) is a crash: the message
      // is handled again, as after a restart
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause) || retriesHandling(cause) || isSimulatedCrash(Cause.squash(cause))
          ? Effect.failCause(cause)
          : park(message, parkReason(cause), 0)
      )
    )

  return (message: IncomingMessage): Effect.Effect<void> =>
    once(message).pipe(
      Effect.tapErrorCause((cause) =>
        Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logWarning("message handling failed on infrastructure; retrying").pipe(
          Effect.annotateLogs({
            type: "MESSAGE_RETRY",
            source: `${message.topic}/${message.partition}/${message.offset}`,
            error: Cause.pretty(cause).slice(0, 500)
          }),
          Effect.zipRight(Metric.increment(messageRetries))
        )
      ),
      Effect.sandbox,
      Effect.retry({
        schedule: Schedule.exponential(Duration.millis(200)).pipe(
          Schedule.union(Schedule.spaced(Duration.seconds(10))),
          Schedule.jittered
        ),
        while: (cause) => !Cause.isInterruptedOnly(cause)
      }),
      Effect.catchAll((cause) => Effect.failCause(cause) as Effect.Effect<never>)
    )
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
      beforeBatch: crash.hit("worker.consumerBatch")
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
