/**
 * What a consumer does with a failed handling of one message (the payment worker's and the notifier's): a
 * transient failure (the database or the broker unavailable, by the one rule of src/Infrastructure.ts, or an
 * order that kept changing under the actor) is logged (MESSAGE_RETRY), counted and retried with backoff until it
 * heals; a permanent one (the database refuses the statement on every try, a bug) parks the message with its
 * SQLSTATE or its cause; a simulated crash (tests) stays a crash. Parking never fails on content; when it fails
 * at all (database down), the message is retried, never skipped.
 */
import { Cause, Duration, Effect, Metric, Schedule } from "effect"
import { isSimulatedCrash } from "../CrashPoints.js"
import { classify, StoreFailed } from "../Infrastructure.js"
import { retryAfterFailure } from "../Retrying.js"
import type { IncomingMessage } from "./Kafka.js"

/** Whether a failed handling is tried again (it heals by itself) — or is permanent and the message is parked. */
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

/** Transient failures retried until they heal: 200 ms doubling, at most 10 s apart, jittered. */
const healing = Schedule.exponential(Duration.millis(200)).pipe(
  Schedule.union(Schedule.spaced(Duration.seconds(10))),
  Schedule.jittered
)

/** `once` (one message's handling), its failures contained as above: never fails (interruption aside). */
export const contained = (
  message: IncomingMessage,
  once: Effect.Effect<void, unknown>,
  park: (reason: string) => Effect.Effect<void, unknown>,
  retries: Metric.Metric.Counter<number>
): Effect.Effect<void> =>
  once.pipe(
    Effect.catchAllCause((cause) =>
      Cause.isInterruptedOnly(cause) || retriesHandling(cause) || isSimulatedCrash(Cause.squash(cause))
        ? Effect.failCause(cause)
        : park(parkReason(cause))
    ),
    Effect.tapErrorCause((cause) =>
      Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logWarning("message handling failed on infrastructure; retrying").pipe(
        Effect.annotateLogs({
          type: "MESSAGE_RETRY",
          source: `${message.topic}/${message.partition}/${message.offset}`,
          error: Cause.pretty(cause).slice(0, 500)
        }),
        Effect.zipRight(Metric.increment(retries))
      )
    ),
    Effect.sandbox,
    (attempt) => retryAfterFailure(attempt, { schedule: healing, while: (cause) => !Cause.isInterruptedOnly(cause) }),
    Effect.catchAll((cause) => Effect.failCause(cause) as Effect.Effect<never>)
  )

/** A consumer's `skip` (src/kafka/KeyedConsumer.ts): a message whose `event-type` header names one of `types` is
 * finished before it is parsed. A message without that header, with it twice, or naming anything else, is decoded
 * (and parked when it cannot be understood). */
export const skipsTypes = (types: ReadonlySet<string>) => (message: IncomingMessage): boolean => {
  let type: string | undefined
  for (const [name, value] of message.headers) {
    if (name === "event-type") {
      // a repeated header is ambiguous: decode the message
      if (type !== undefined) return false
      type = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("utf8")
    }
  }
  return type !== undefined && types.has(type)
}

/** The message's key as text. */
export const keyText = (message: IncomingMessage): string | null => message.key === null ? null : Buffer.from(message.key).toString("utf8")

/** The trace headers of a message, as text (the last value of a repeated name). */
export const traceHeaders = (message: IncomingMessage): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [name, value] of message.headers) {
    if (name === "traceparent" || name === "tracestate") out[name] = Buffer.from(value).toString("utf8")
  }
  return out
}
