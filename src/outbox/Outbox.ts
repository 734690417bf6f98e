/**
 * The outbox as the relay sees it, in PostgreSQL and in memory. `publishBatch` hands the oldest unpublished
 * events (position order) to `publish` and marks them published only if it succeeds — all or nothing: a
 * failure or crash inside `publish` leaves every row unpublished, to go again.
 * PostgreSQL: one transaction holding pg_try_advisory_xact_lock(RELAY_LOCK), so two relays never publish at
 * once (the loser gets 0 and waits for its next wake), and a key's events leave in order.
 */
import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import type { RecordedEvent } from "../eventstore/EventStore.js"
import { MemoryDatabase } from "../eventstore/MemoryDatabase.js"
import { type EventRow, toRecordedEvent } from "../eventstore/PgEventStore.js"

/** Advisory lock key of relay leadership (any constant unique to this purpose). */
export const RELAY_LOCK = 7_318_001

export class Outbox extends Context.Tag("Outbox")<Outbox, {
  readonly publishBatch: <E>(
    limit: number,
    publish: (events: ReadonlyArray<RecordedEvent>) => Effect.Effect<void, E>
  ) => Effect.Effect<number, E>
}>() {}

export const PgOutbox = Layer.effect(
  Outbox,
  Effect.map(SqlClient.SqlClient, (sql) =>
    Outbox.of({
      publishBatch: (limit, publish) =>
        sql.withTransaction(
          Effect.gen(function*() {
            const [lock] = yield* sql<{ ok: boolean }>`SELECT pg_try_advisory_xact_lock(${RELAY_LOCK}) AS ok`
            if (!lock?.ok) return 0
            const rows = yield* sql<EventRow>`
              SELECT e.position::text AS position, e.stream_id, e.version, e.type, e.schema_version, e.data,
                     e.metadata, e.recorded_at
              FROM outbox o JOIN events e ON e.position = o.position
              WHERE o.published_at IS NULL
              ORDER BY o.position
              LIMIT ${limit}`
            if (rows.length === 0) return 0
            yield* publish(rows.map(toRecordedEvent))
            yield* sql`UPDATE outbox SET published_at = clock_timestamp() WHERE position = ANY(${rows.map((r) => r.position)}::bigint[])`
            return rows.length
          })
        ).pipe(Effect.catchTag("SqlError", Effect.die))
    }))
)

export const MemoryOutbox = Layer.effect(
  Outbox,
  Effect.map(MemoryDatabase, (db) => {
    let busy = false
    return Outbox.of({
      publishBatch: (limit, publish) =>
        Effect.suspend(() => {
          if (busy) return Effect.succeed(0)
          const rows = db.outbox.filter((r) => r.publishedAt === null).slice(0, limit)
          if (rows.length === 0) return Effect.succeed(0)
          busy = true
          const events = rows.map((r) => db.events[Number(r.position) - 1]!)
          return publish(events).pipe(
            Effect.tap(() => Effect.sync(() => rows.forEach((r) => r.publishedAt = new Date()))),
            Effect.as(rows.length),
            Effect.ensuring(Effect.sync(() => busy = false))
          )
        })
    })
  })
)
