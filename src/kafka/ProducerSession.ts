/**
 * The process's idempotent producer, replaced after a failed send (docs/ARCHITECTURE.md "Kafka contract").
 *
 * An idempotent producer numbers its batches per partition under a producer id; the broker accepts only the next
 * number, and answers a batch whose numbers it has already written as a duplicate (success, nothing appended).
 * kafkajs takes its numbers back when a produce request fails — even one the broker wrote but could not answer
 * (paused, then killed). The next send then reuses those numbers for other messages: the broker either rejects it
 * with OUT_OF_ORDER_SEQUENCE_NUMBER, and every send after it the same way, for good — found by the fault-injection
 * suite (seed 1008: the broker paused 12 s and killed under load; the relay published nothing more, 1,436 outbox
 * rows left) — or, when the number ranges happen to match, acknowledges it as a duplicate without writing it:
 * a message lost while its sender saw success. The Java client avoids both by never reusing numbers (it bumps
 * the producer's epoch instead); here a failed send retires its producer, and the next send goes through a new
 * one (a new producer id, numbers from 0). The failed send is the caller's to retry, as before (the relay's rows
 * stay unpublished until acknowledged); a batch the broker wrote after all is then on the topic twice, which
 * consumers absorb like any redelivery.
 */
import type { Producer, ProducerRecord, RecordMetadata } from "kafkajs"

/** kafkajs error types that say a producer's numbering is out of step with the broker's (named in the log). */
export const sessionBreaking = new Set([
  "OUT_OF_ORDER_SEQUENCE_NUMBER",
  "UNKNOWN_PRODUCER_ID",
  "INVALID_PRODUCER_EPOCH",
  "INVALID_PRODUCER_ID_MAPPING",
  "PRODUCER_FENCED"
])

/** The session-breaking kafkajs error type of `e` or of an error it wraps (the retrier nests the last error as
 * `cause`; an aggregate lists `errors`), if any. */
export const breaksSession = (e: unknown, depth = 0): string | undefined => {
  const error = e as { type?: unknown; cause?: unknown; errors?: unknown } | undefined
  if (error === undefined || error === null || typeof error !== "object" || depth > 5) return undefined
  if (typeof error.type === "string" && sessionBreaking.has(error.type)) return error.type
  for (const inner of [error.cause, ...(Array.isArray(error.errors) ? error.errors : [])]) {
    const found = breaksSession(inner, depth + 1)
    if (found !== undefined) return found
  }
  return undefined
}

type Sending = Pick<Producer, "connect" | "disconnect" | "send">

export interface ProducerSession {
  /** Connect (the first producer); fails as its connect does. */
  readonly start: () => Promise<void>
  /** Send through the current producer; a failure replaces it before the error is rethrown. */
  readonly send: (record: ProducerRecord) => Promise<Array<RecordMetadata>>
  readonly close: () => Promise<void>
}

/**
 * `open` makes a producer (unconnected); `renewed` hears why one was replaced (a log line and a metric).
 * Concurrent sends that fail on the same producer replace it once.
 */
export const makeProducerSession = (open: () => Sending, renewed: (why: string) => void): ProducerSession => {
  const connect = (producer: Sending) => {
    const ready = producer.connect()
    ready.catch(() => {}) // awaited by the sends; a rejection nobody awaited yet must not be "unhandled"
    return { producer, ready }
  }
  let current = connect(open())
  const replace = (broken: typeof current, why: string) => {
    if (current !== broken) return
    current = connect(open())
    broken.producer.disconnect().catch(() => {})
    renewed(why)
  }
  return {
    start: () => current.ready,
    send: async (record) => {
      const used = current
      try {
        await used.ready
      } catch (e) {
        replace(used, "connect failed")
        throw e
      }
      try {
        return await used.producer.send(record)
      } catch (e) {
        replace(used, breaksSession(e) ?? `send failed: ${e instanceof Error ? e.message : String(e)}`.slice(0, 200))
        throw e
      }
    },
    close: () => current.producer.disconnect()
  }
}
