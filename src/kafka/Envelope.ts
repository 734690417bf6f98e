/**
 * The Kafka message of an order event: key = order id, value = a JSON envelope of the event, headers that let
 * a plain consumer (kcat) understand it without decoding the value.
 */
import { Either, Schema } from "effect"
import type { OrderEvent } from "../domain/Order.js"
import { decodeEvent, encodeEvent } from "../eventstore/EventCodec.js"
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

const decodeEnvelope = Schema.decodeUnknownEither(Schema.parseJson(Envelope))

/** The envelope and its event, or why the message cannot be understood (it goes to dead letters at once). */
export const fromMessage = (value: string): Either.Either<{ envelope: Envelope; event: OrderEvent }, string> =>
  Either.flatMap(Either.mapLeft(decodeEnvelope(value), (e) => `undecodable envelope: ${e.message}`), (envelope) =>
    Either.try({
      try: () => ({ envelope, event: decodeEvent(envelope.type, envelope.schemaVersion, envelope.data) }),
      catch: (e) => `undecodable ${envelope.type} v${envelope.schemaVersion}: ${e instanceof Error ? e.message : e}`
    }))
