/** The `events` table as its readers see it: the columns to select (qualified by `e`) and the row codec. */
import type { OrderId } from "../domain/Order.js"
import { decodeEvent } from "./EventCodec.js"
import type { RecordedEvent } from "./EventStore.js"

/** Select list of an EventRow from `events e`. */
export const eventColumns =
  "e.position::text AS position, e.event_id, e.stream_id, e.version, e.type, e.schema_version, e.data, e.metadata, e.recorded_at"

export interface EventRow {
  readonly position: string
  readonly event_id: string
  readonly stream_id: string
  readonly version: number
  readonly type: string
  readonly schema_version: number
  readonly data: unknown
  readonly metadata: Record<string, string>
  readonly recorded_at: Date
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
