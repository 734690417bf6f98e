/**
 * The `outbox` table's writes: one row per appended event, registered with the event store as an inline
 * projection, so a row exists exactly when its event committed (transactional outbox). The relay reads and
 * marks them (Outbox.ts). In memory a row keeps its recorded event (PostgreSQL joins `events` instead).
 */
import { memoryTable } from "../database/MemoryDatabase.js"
import type { RecordedEvent } from "../eventstore/EventStore.js"
import { inlineProjection } from "../eventstore/InlineProjection.js"

export interface MemoryOutboxRow {
  readonly event: RecordedEvent
  publishedAt: Date | null
}

/** The in-memory `outbox` table, in position order. */
export const MemoryOutboxRows = memoryTable("outbox", () => new Array<MemoryOutboxRow>())

export const OutboxProjection = inlineProjection({
  name: "outbox",
  pg: {
    write: (sql, { appended }) => sql`INSERT INTO outbox (position, stream_id) SELECT position, stream_id FROM ${appended}`
  },
  memory: (db) => {
    const rows = db.table(MemoryOutboxRows)
    return (_request, recorded) => {
      for (const event of recorded) rows.push({ event, publishedAt: null })
    }
  }
})
