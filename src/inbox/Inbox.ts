/**
 * The consumer inbox (dedupe, docs/ARCHITECTURE.md "Payment worker"): which messages a consumer has finished.
 * A handler that appends events writes its inbox row inside that append (`InboxProjection`: the append's
 * participant `finishesMessage`); `markProcessed` is for the outcomes that append nothing. In PostgreSQL,
 * lookups made at the same time (the messages of one Kafka batch) are answered by one query (src/Batcher.ts).
 */
import { SqlClient } from "@effect/sql"
import { Context, Effect, Either, Layer } from "effect"
import { makeBatcher } from "../Batcher.js"
import { MemoryDatabase, memoryTable } from "../database/MemoryDatabase.js"
import type { AppendParticipants } from "../eventstore/EventStore.js"
import { inlineProjection } from "../eventstore/InlineProjection.js"
import { orStoreError, type StoreError } from "../Infrastructure.js"

/** A message a consumer has finished: (consumer, message id) is stored once. */
export interface InboxEntry {
  readonly consumer: string
  readonly messageId: string
}

/** The message whose handling made an append: its inbox row is written in the append's transaction. */
export class FinishedMessage extends Context.Tag("FinishedMessage")<FinishedMessage, InboxEntry>() {}

/** The append's participant that writes `entry`'s inbox row. */
export const finishesMessage = (entry: InboxEntry): AppendParticipants => {
  const inputs = Context.make(FinishedMessage, entry) as Context.Context<never>
  return () => inputs
}

/** The in-memory `inbox` table, rows as `${consumer}/${messageId}` (message ids lower case: PostgreSQL's uuid
 * compares them whatever their case). */
const MemoryInboxRows = memoryTable("inbox", () => new Set<string>())
const memoryKey = (entry: InboxEntry) => `${entry.consumer}/${entry.messageId.toLowerCase()}`

export const InboxProjection = inlineProjection({
  name: "inbox",
  pg: {
    input: {
      columns: { consumer: "text", message_id: "uuid" },
      rows: (request) => {
        const finished = Context.getOption(request.inputs, FinishedMessage)
        return finished._tag === "Some" ? [{ consumer: finished.value.consumer, message_id: finished.value.messageId }] : []
      }
    },
    write: (sql, { input, written }) => sql`
      INSERT INTO inbox (consumer, message_id)
      SELECT consumer, message_id FROM ${input} WHERE i IN (SELECT i FROM ${written})
      ON CONFLICT DO NOTHING`
  },
  memory: (db) => {
    const rows = db.table(MemoryInboxRows)
    return (request) => {
      const finished = Context.getOption(request.inputs, FinishedMessage)
      if (finished._tag === "Some") rows.add(memoryKey(finished.value))
    }
  }
})

export class Inbox extends Context.Tag("Inbox")<Inbox, {
  readonly isProcessed: (consumer: string, messageId: string) => Effect.Effect<boolean, StoreError>
  readonly markProcessed: (consumer: string, messageId: string) => Effect.Effect<void, StoreError>
}>() {}

/** Retention: delete up to `limit` rows processed more than `hours` ago; how many. */
export const deleteProcessed = (sql: SqlClient.SqlClient) => (hours: number, limit: number) =>
  Effect.map(
    sql`DELETE FROM inbox WHERE (consumer, message_id) IN (
          SELECT consumer, message_id FROM inbox
          WHERE processed_at < now() - ${hours} * interval '1 hour'
          ORDER BY processed_at LIMIT ${limit} FOR UPDATE SKIP LOCKED)
        RETURNING message_id`,
    (rows) => rows.length
  )

export const PgInbox = Layer.scoped(
  Inbox,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const lookup = yield* makeBatcher({
      maxBatch: 500,
      workers: 2,
      span: "Inbox.lookup",
      run: (keys: ReadonlyArray<{ readonly consumer: string; readonly messageId: string }>) =>
        sql<{ consumer: string; message_id: string }>`
          SELECT i.consumer, i.message_id FROM inbox i
          JOIN unnest(${keys.map((k) => k.consumer)}::text[], ${keys.map((k) => k.messageId)}::uuid[]) AS k(consumer, message_id)
            ON i.consumer = k.consumer AND i.message_id = k.message_id`.pipe(
          Effect.map((rows) => {
            const found = new Set(rows.map((r) => `${r.consumer}/${r.message_id}`))
            return keys.map((k) => Either.right(found.has(`${k.consumer}/${k.messageId.toLowerCase()}`)))
          }),
          orStoreError
        )
    })
    return Inbox.of({
      isProcessed: (consumer, messageId) => lookup({ consumer, messageId }),
      markProcessed: (consumer, messageId) =>
        sql`INSERT INTO inbox (consumer, message_id) VALUES (${consumer}, ${messageId}) ON CONFLICT DO NOTHING`.pipe(
          Effect.asVoid,
          orStoreError
        )
    })
  })
)

export const MemoryInbox = Layer.effect(
  Inbox,
  Effect.map(MemoryDatabase, (db) => {
    const rows = db.table(MemoryInboxRows)
    return Inbox.of({
      isProcessed: (consumer, messageId) => Effect.sync(() => rows.has(memoryKey({ consumer, messageId }))),
      markProcessed: (consumer, messageId) => Effect.sync(() => void rows.add(memoryKey({ consumer, messageId })))
    })
  })
)
