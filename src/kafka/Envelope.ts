/**
 * The Kafka message of an order event: key = order id, value = a JSON envelope of the event, headers that let
 * a plain consumer (kcat) understand it without decoding the value.
 */
import { Either, Schema } from "effect"
import type { OrderEvent } from "../domain/Order.js"
import { decodeEvent, encodeEvent } from "../eventstore/EventCodec.js"
import { jsonDepthExceeds } from "../JsonDepth.js"
import type { OutboxEventRow } from "../eventstore/EventRows.js"
import type { EventMetadata, RecordedEvent } from "../eventstore/EventStore.js"
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

/** What an envelope is made of: an event as stored (its data in the shape of `schemaVersion`) and where. */
export interface StoredEvent {
  readonly eventId: string
  readonly type: string
  readonly schemaVersion: number
  readonly streamId: string
  readonly version: number
  readonly position: bigint | string
  readonly recordedAt: Date
  /** The event's data in the shape of `schemaVersion`: consumers upcast it (once) from there. */
  readonly data: unknown
  readonly metadata: EventMetadata
}

/** The message of a stored event: data and schema version travel as stored, never decoded and encoded again. */
export const messageOf = (stored: StoredEvent): OutgoingMessage => {
  const metadata: Record<string, string> = {}
  const given = stored.metadata as Readonly<Record<string, unknown>>
  for (const k in given) {
    const v = given[k]
    if (typeof v === "string") metadata[k] = v
  }
  const envelope: Envelope = {
    eventId: stored.eventId,
    type: stored.type,
    schemaVersion: stored.schemaVersion,
    orderId: stored.streamId,
    version: stored.version,
    position: stored.position.toString(),
    recordedAt: stored.recordedAt.toISOString(),
    data: stored.data,
    metadata
  }
  const headers: Record<string, string> = {
    "event-id": stored.eventId,
    "event-type": stored.type,
    "schema-version": String(stored.schemaVersion),
    "content-type": "application/json"
  }
  if (metadata.traceparent) headers.traceparent = metadata.traceparent
  if (metadata.tracestate) headers.tracestate = metadata.tracestate
  if (metadata.correlationId) headers["correlation-id"] = metadata.correlationId
  return { key: stored.streamId, value: JSON.stringify(envelope), headers }
}

/** The message of an event row as read from `events` (the relay's path): no decoding at all. */
export const messageOfRow = (row: OutboxEventRow): OutgoingMessage =>
  messageOf({
    eventId: row.event_id,
    type: row.type,
    schemaVersion: row.schema_version,
    streamId: row.stream_id,
    version: row.version,
    position: row.position,
    recordedAt: row.recorded_at,
    data: row.data,
    metadata: row.metadata
  })

/**
 * The message of a decoded event (in-memory stores, tests, a dead letter built from the log): encoded again,
 * so its data is in the *current* shape and the envelope says the current schema version — a consumer must
 * not upcast data that was upcast already.
 */
export const toMessage = (recorded: RecordedEvent): OutgoingMessage => {
  const encoded = encodeEvent(recorded.event)
  return messageOf({
    eventId: recorded.event.eventId,
    type: encoded.type,
    schemaVersion: encoded.schemaVersion,
    streamId: recorded.streamId,
    version: recorded.version,
    position: recorded.position,
    recordedAt: recorded.recordedAt,
    data: encoded.data,
    metadata: recorded.metadata
  })
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
  key?: string | null,
  decode: (type: string, schemaVersion: number, data: unknown) => OrderEvent = decodeEvent
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
      return Either.right({ envelope: e, event: decode(e.type, e.schemaVersion, e.data) })
    } catch (err) {
      return Either.left(`undecodable ${e.type} v${e.schemaVersion}: ${err instanceof Error ? err.message : String(err)}`)
    }
  } catch (err) {
    // a bug in the checks above must not stop consumption either: the message is parked with this reason
    return Either.left(`decoding failed: ${err instanceof Error ? err.message : String(err)}`)
  }
}
