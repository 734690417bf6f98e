/**
 * The Kafka message of an order event: key = order id, value = a JSON envelope of the event, headers that let
 * a plain consumer (kcat) understand it without decoding the value.
 */
import { Either, Schema } from "effect"
import type { OrderEvent } from "../domain/Order.js"
import { decodeEvent, encodeEvent } from "../eventstore/EventCodec.js"
import { jsonDepthExceeds } from "../JsonDepth.js"
import type { RecordedEvent } from "../eventstore/EventStore.js"
import type { OutgoingMessage } from "./Kafka.js"

export const Envelope = Schema.Struct({
  eventId: Schema.UUID,
  type: Schema.String,
  schemaVersion: Schema.Int,
  orderId: Schema.UUID,
  version: Schema.Int,
  position: Schema.String,
  recordedAt: Schema.String,
  data: Schema.Unknown,
  metadata: Schema.Record({ key: Schema.String, value: Schema.String })
})
export type Envelope = typeof Envelope.Type

export const toMessage = (recorded: RecordedEvent): OutgoingMessage => {
  const encoded = encodeEvent(recorded.event)
  const envelope: Envelope = {
    eventId: recorded.event.eventId,
    type: encoded.type,
    schemaVersion: recorded.schemaVersion,
    orderId: recorded.streamId,
    version: recorded.version,
    position: recorded.position.toString(),
    recordedAt: recorded.recordedAt.toISOString(),
    data: encoded.data,
    metadata: Object.fromEntries(Object.entries(recorded.metadata).filter(([, v]) => typeof v === "string"))
  }
  const headers: Record<string, string> = {
    "event-id": envelope.eventId,
    "event-type": envelope.type,
    "schema-version": String(envelope.schemaVersion),
    "content-type": "application/json"
  }
  if (recorded.metadata.traceparent) headers.traceparent = recorded.metadata.traceparent
  if (recorded.metadata.tracestate) headers.tracestate = recorded.metadata.tracestate
  if (recorded.metadata.correlationId) headers["correlation-id"] = recorded.metadata.correlationId
  return { key: recorded.streamId, value: JSON.stringify(envelope), headers }
}

const decodeEnvelope = Schema.decodeUnknownEither(Envelope)

/** Largest value a consumer tries to understand (an envelope is well under 1 KiB); larger ones are parked. */
export const MAX_VALUE_BYTES = 64 * 1024
/** Deepest JSON nesting a consumer parses; the envelope needs 3 levels, its data 2 more. */
export const MAX_DEPTH = 32

const utf8 = new TextDecoder("utf-8", { fatal: true })

const decodeText = (value: string | Uint8Array | null | undefined): Either.Either<string, string> => {
  if (value === null || value === undefined) return Either.left("tombstone: the message has no value")
  if (typeof value === "string") return Either.right(value)
  if (value.length > MAX_VALUE_BYTES) return Either.left(`value of ${value.length} bytes is over ${MAX_VALUE_BYTES}`)
  try {
    return Either.right(utf8.decode(value))
  } catch {
    return Either.left("value is not valid UTF-8")
  }
}

/**
 * The envelope and its event, or why the message cannot be understood (it goes to dead letters at once).
 * Total: any bytes, any size, any depth give one or the other, never a throw — size and depth are bounded
 * before anything is parsed. `key`, when given, must be the envelope's order id (the partitioning promise).
 */
export const fromMessage = (
  value: string | Uint8Array | null | undefined,
  key?: string | null
): Either.Either<{ envelope: Envelope; event: OrderEvent }, string> => {
  try {
    const text = decodeText(value)
    if (Either.isLeft(text)) return Either.left(text.left)
    if (text.right.length === 0) return Either.left("empty value")
    if (text.right.length > MAX_VALUE_BYTES) return Either.left(`value of ${text.right.length} characters is too large`)
    if (jsonDepthExceeds(text.right, MAX_DEPTH)) return Either.left(`JSON nested deeper than ${MAX_DEPTH}`)
    let json: unknown
    try {
      json = JSON.parse(text.right)
    } catch (e) {
      return Either.left(`not JSON: ${e instanceof Error ? e.message : String(e)}`)
    }
    const envelope = decodeEnvelope(json)
    if (Either.isLeft(envelope)) return Either.left(`undecodable envelope: ${envelope.left.message}`)
    const e = envelope.right
    if (key !== undefined && key !== e.orderId) {
      return Either.left(`message key ${JSON.stringify(key)} is not the envelope's order id ${e.orderId}`)
    }
    try {
      return Either.right({ envelope: e, event: decodeEvent(e.type, e.schemaVersion, e.data) })
    } catch (err) {
      return Either.left(`undecodable ${e.type} v${e.schemaVersion}: ${err instanceof Error ? err.message : String(err)}`)
    }
  } catch (err) {
    // a bug in the checks above must not stop consumption either: the message is parked with this reason
    return Either.left(`decoding failed: ${err instanceof Error ? err.message : String(err)}`)
  }
}
