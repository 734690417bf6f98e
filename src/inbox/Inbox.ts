/**
 * The consumer inbox (dedupe, DESIGN §8): which messages a consumer has finished. A handler that appends
 * events writes its inbox row inside that append (EventStore.append's `inbox`); `markProcessed` is for the
 * outcomes that append nothing. In PostgreSQL, lookups made at the same time (the messages of one Kafka batch)
 * are answered by one query (src/Batcher.ts).
 */
import { SqlClient } from "@effect/sql"
import { Context, Effect, Either, Layer } from "effect"
import { makeBatcher } from "../Batcher.js"
import { MemoryDatabase } from "../eventstore/MemoryDatabase.js"

export class Inbox extends Context.Tag("Inbox")<Inbox, {
  readonly isProcessed: (consumer: string, messageId: string) => Effect.Effect<boolean>
  readonly markProcessed: (consumer: string, messageId: string) => Effect.Effect<void>
}>() {}

export const PgInbox = Layer.scoped(
  Inbox,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const lookup = yield* makeBatcher({
      maxBatch: 500,
      workers: 2,
      run: (keys: ReadonlyArray<{ readonly consumer: string; readonly messageId: string }>) =>
        sql<{ consumer: string; message_id: string }>`
          SELECT i.consumer, i.message_id FROM inbox i
          JOIN unnest(${keys.map((k) => k.consumer)}::text[], ${keys.map((k) => k.messageId)}::uuid[]) AS k(consumer, message_id)
            ON i.consumer = k.consumer AND i.message_id = k.message_id`.pipe(
          Effect.map((rows) => {
            const found = new Set(rows.map((r) => `${r.consumer}/${r.message_id}`))
            return keys.map((k) => Either.right(found.has(`${k.consumer}/${k.messageId.toLowerCase()}`)))
          }),
          Effect.orDie
        )
    })
    return Inbox.of({
      isProcessed: (consumer, messageId) => lookup({ consumer, messageId }),
      markProcessed: (consumer, messageId) =>
        sql`INSERT INTO inbox (consumer, message_id) VALUES (${consumer}, ${messageId}) ON CONFLICT DO NOTHING`.pipe(
          Effect.asVoid,
          Effect.orDie
        )
    })
  })
)

export const MemoryInbox = Layer.effect(
  Inbox,
  Effect.map(MemoryDatabase, (db) =>
    Inbox.of({
      // message ids are UUIDs: compared as PostgreSQL's uuid type compares them, whatever their case
      isProcessed: (consumer, messageId) => Effect.sync(() => db.inbox.has(`${consumer}/${messageId.toLowerCase()}`)),
      markProcessed: (consumer, messageId) =>
        Effect.sync(() => void db.inbox.add(`${consumer}/${messageId.toLowerCase()}`))
    }))
)
