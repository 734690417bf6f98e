/**
 * The consumer inbox (dedupe, DESIGN §8): which messages a consumer has finished. A handler that appends
 * events writes its inbox row inside that append (EventStore.append's `inbox`); `markProcessed` is for the
 * outcomes that append nothing.
 */
import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import { MemoryDatabase } from "../eventstore/MemoryDatabase.js"

export class Inbox extends Context.Tag("Inbox")<Inbox, {
  readonly isProcessed: (consumer: string, messageId: string) => Effect.Effect<boolean>
  readonly markProcessed: (consumer: string, messageId: string) => Effect.Effect<void>
}>() {}

export const PgInbox = Layer.effect(
  Inbox,
  Effect.map(SqlClient.SqlClient, (sql) =>
    Inbox.of({
      isProcessed: (consumer, messageId) =>
        sql`SELECT 1 FROM inbox WHERE consumer = ${consumer} AND message_id = ${messageId}`.pipe(
          Effect.map((rows) => rows.length > 0),
          Effect.orDie
        ),
      markProcessed: (consumer, messageId) =>
        sql`INSERT INTO inbox (consumer, message_id) VALUES (${consumer}, ${messageId}) ON CONFLICT DO NOTHING`.pipe(
          Effect.asVoid,
          Effect.orDie
        )
    }))
)

export const MemoryInbox = Layer.effect(
  Inbox,
  Effect.map(MemoryDatabase, (db) =>
    Inbox.of({
      isProcessed: (consumer, messageId) => Effect.sync(() => db.inbox.has(`${consumer}/${messageId}`)),
      markProcessed: (consumer, messageId) => Effect.sync(() => void db.inbox.add(`${consumer}/${messageId}`))
    }))
)
