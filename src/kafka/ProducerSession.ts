/**
 * The process's idempotent producer, replaced when its session is broken (docs/ARCHITECTURE.md "Kafka contract").
 *
 * An idempotent producer numbers its batches per partition under a producer id; the broker accepts only the next
 * number. Some errors mean the numbering can never line up again — OUT_OF_ORDER_SEQUENCE_NUMBER,
 * UNKNOWN_PRODUCER_ID, INVALID_PRODUCER_EPOCH — and every later send fails the same way: kafkajs (like librdkafka,
 * which calls it a fatal error) does not recover by itself. Found by the fault-injection suite (seed 1008: the
 * broker paused and then killed under load; the relay failed every send for the rest of the run, 1,436 outbox
 * rows unpublished). The remedy is a new producer (a new producer id, numbering from 0): the failed send is the
 * caller's to retry (the relay's outbox rows stay unpublished until acknowledged), so nothing is lost, and the
 * duplicates a new id may let through are absorbed downstream like any redelivery. A producer that could not
 * connect is replaced too, so that the next send connects again.
 */
import type { Producer, ProducerRecord, RecordMetadata } from "kafkajs"

/** kafkajs error types after which a producer's idempotent session is useless. */
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
  /** Send through the current producer; a session-breaking failure replaces it before the error is rethrown. */
  readonly send: (record: ProducerRecord) => Promise<Array<RecordMetadata>>
  readonly close: () => Promise<void>
}

/**
 * `open` makes a producer (unconnected); `renewed` hears why one was replaced (a log line and a metric).
 * Concurrent sends that fail on the same broken producer replace it once.
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
        const type = breaksSession(e)
        if (type !== undefined) replace(used, type)
        throw e
      }
    },
    close: () => current.producer.disconnect()
  }
}
