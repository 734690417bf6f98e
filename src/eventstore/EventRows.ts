/** The `events` table as its readers see it: the columns to select (qualified by `e`) and the row codec. */
import type { OrderId } from "../domain/Order.js"
import { decodeEvent } from "./EventCodec.js"
import type { RecordedEvent } from "./EventStore.js"

/** Select list of an EventRow from `events e`. */
export const eventColumns =
  "e.position::text AS position, e.stream_id, e.version, e.type, e.schema_version, e.data, e.metadata, e.recorded_at"

export interface EventRow {
  readonly position: string
  readonly stream_id: string
  readonly version: number
  readonly type: string
  readonly schema_version: number
  readonly data: unknown
  readonly metadata: Record<string, string>
  readonly recorded_at: Date
}

/** What the relay reads (`eventColumns` and `e.event_id`): the event id goes into the message's envelope and
 * headers; readers that decode the event take it from its data and do not select it. */
export const outboxEventColumns = `${eventColumns}, e.event_id`

export interface OutboxEventRow extends EventRow {
  readonly event_id: string
}

export const toRecordedEvent = (row: EventRow): RecordedEvent => ({
  position: BigInt(row.position),
  streamId: row.stream_id as OrderId,
  version: row.version,
  schemaVersion: row.schema_version,
  event: decodeEvent(row.type, row.schema_version, row.data),
  metadata: row.metadata,
  recordedAt: row.recorded_at
})
