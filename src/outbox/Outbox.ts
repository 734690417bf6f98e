/**
 * The outbox as the relay sees it, in PostgreSQL and in memory: leadership, and one statement per batch.
 *
 * `lead` tries to become the one relay that publishes. PostgreSQL: a session-level `pg_try_advisory_lock` on a
 * connection reserved from the pool for as long as the leadership lasts (its scope). The lock lives exactly as
 * long as that database session: when the connection dies (network, pg_terminate_backend, server restart) the
 * lock is gone and another relay can take it — and every later statement of the old leader fails on the dead
 * connection, so it learns it lost the lock the next time it asks for work. Closing the scope unlocks and hands
 * the connection back.
 *
 * `markAndRead` is the only statement of a batch, run on that same connection: mark the rows whose messages the
 * broker acknowledged, and read the next unpublished rows in position order, skipping the rows still in flight.
 * (The read cannot see the marks of its own statement, so it skips the rows being marked too.)
 */
import { SqlClient } from "@effect/sql"
import { Context, Data, Effect, ExecutionStrategy, Exit, Layer, Option, Scope } from "effect"
import type { EventMetadata } from "../eventstore/EventStore.js"
import { messageOfRow, toMessage } from "../kafka/Envelope.js"
import type { OutgoingMessage } from "../kafka/Kafka.js"
import { MemoryDatabase } from "../database/MemoryDatabase.js"
import { ShutdownBudgetConfig, shutdownStep } from "../Shutdown.js"
import { outboxEventColumns, type OutboxEventRow } from "../eventstore/EventRows.js"
import { MemoryOutboxRows } from "./OutboxProjection.js"

/** Retention: delete up to `limit` rows published more than `hours` ago (never an unpublished row); how many. */
export const deletePublished = (sql: SqlClient.SqlClient) => (hours: number, limit: number) =>
  Effect.map(
    sql`DELETE FROM outbox WHERE position IN (
          SELECT position FROM outbox
          WHERE published_at IS NOT NULL AND published_at < now() - ${hours} * interval '1 hour'
          ORDER BY published_at LIMIT ${limit} FOR UPDATE SKIP LOCKED)
        RETURNING position`,
    (rows) => rows.length
  )

/** Advisory lock key of relay leadership (any constant unique to this purpose; advisory locks are per database). */
export const RELAY_LOCK = 7_318_001

/** The leader's connection failed (it died, or a statement on it failed): the lock may be gone. */
export class LeadershipLost extends Data.TaggedError("LeadershipLost")<{ readonly message: string }> {}

/** An unpublished row, ready to send: its message carries the event as stored (no decoding on the way). */
export interface OutboxMessage {
  readonly position: bigint
  readonly message: OutgoingMessage
  /** the event's metadata (trace links of the publish span) */
  readonly metadata: EventMetadata
}

/** What a leader can do while it holds the lock. */
export interface OutboxLeader {
  /**
   * One round trip: stamp `acked` published (only rows the broker acknowledged belong here), then the oldest
   * `limit` unpublished rows in position order, without `acked` and `inFlight`.
   */
  readonly markAndRead: (
    acked: ReadonlyArray<bigint>,
    inFlight: ReadonlyArray<bigint>,
    limit: number
  ) => Effect.Effect<ReadonlyArray<OutboxMessage>, LeadershipLost>
}

export class Outbox extends Context.Tag("Outbox")<Outbox, {
  /** Leadership for the scope, or None when another relay holds it. Fails when the database is unreachable. */
  readonly lead: Effect.Effect<Option.Option<OutboxLeader>, LeadershipLost, Scope.Scope>
}>() {}

/**
 * End a reserved connection's session so the pool discards it at release (pg-pool drops a client that is
 * ending). @effect/sql-pg 0.53 keeps the `pg` client of a reserved connection in its `pg` field; if that
 * ever changes this does nothing, and the unlock above remains the normal path.
 */
const endSession = (conn: unknown) =>
  Effect.sync(() => {
    const client = (conn as { readonly pg?: { readonly end?: () => Promise<void> } }).pg
    client?.end?.().catch(() => undefined)
  })

const lost = (message: string) => (e: { readonly message: string }) => new LeadershipLost({ message: `${message}: ${e.message}` })

export const PgOutbox = Layer.effect(
  Outbox,
  Effect.map(Effect.all([SqlClient.SqlClient, Effect.orDie(ShutdownBudgetConfig)]), ([sql, budget]) => {
    const leader = (conn: Effect.Effect.Success<typeof sql.reserve>): OutboxLeader => ({
      markAndRead: (acked, inFlight, limit) => {
        const done = acked.map(String)
        const [text, params] = sql`
          WITH marked AS (
            UPDATE outbox SET published_at = clock_timestamp()
            WHERE position = ANY(${done}::bigint[]) AND published_at IS NULL
          )
          SELECT ${sql.literal(outboxEventColumns)}
          FROM outbox o JOIN events e ON e.position = o.position
          WHERE o.published_at IS NULL
            AND o.position <> ALL(${done}::bigint[]) AND o.position <> ALL(${inFlight.map(String)}::bigint[])
          ORDER BY o.position
          LIMIT ${limit}`.compile()
        return conn.execute(text, params, undefined).pipe(
          Effect.map((rows) =>
            (rows as ReadonlyArray<OutboxEventRow>).map((row): OutboxMessage => ({
              position: BigInt(row.position),
              message: messageOfRow(row),
              metadata: row.metadata
            }))
          ),
          Effect.mapError(lost("outbox statement failed on the leader's connection"))
        )
      }
    })

    return Outbox.of({
      lead: Effect.gen(function*() {
        // the connection is held only while leading: a standby hands it straight back
        const scope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
        const attempt = Effect.gen(function*() {
          const conn = yield* Scope.extend(sql.reserve, scope)
          const [lockText, lockParams] = sql`SELECT pg_try_advisory_lock(${RELAY_LOCK}) AS ok`.compile()
          const [row] = yield* conn.execute(lockText, lockParams, undefined)
          if (row?.ok !== true) return Option.none<OutboxLeader>()
          const [unlockText, unlockParams] = sql`SELECT pg_advisory_unlock(${RELAY_LOCK}) AS ok`.compile()
          // A dead connection lost the lock with its session (and the pool discards it). A live one must not go
          // back to the pool still holding the lock — leadership would sit in an idle pooled session with
          // nobody publishing — so it unlocks, and when that cannot be confirmed the session is ended.
          // (bounded as every shutdown step, src/Shutdown.ts: a database that does not answer ends the session)
          yield* Scope.addFinalizer(
            scope,
            shutdownStep("relay unlock", budget.disconnectMs, conn.execute(unlockText, unlockParams, undefined).pipe(
              Effect.flatMap((rows) => rows[0]?.ok === true ? Effect.void : Effect.fail("not unlocked"))
            )).pipe(Effect.flatMap((unlocked) => (unlocked ? Effect.void : endSession(conn))))
          )
          return Option.some(leader(conn))
        }).pipe(Effect.mapError(lost("could not try the relay lock")))
        const result = yield* attempt.pipe(Effect.onError(() => Scope.close(scope, Exit.void)))
        if (Option.isNone(result)) yield* Scope.close(scope, Exit.void)
        return result
      })
    })
  })
)

/** The in-memory twin: one leader at a time per database, the same mark-and-read. */
export const MemoryOutbox = Layer.effect(
  Outbox,
  Effect.map(MemoryDatabase, (db) => {
    const outbox = db.table(MemoryOutboxRows)
    let leading = false
    const leader: OutboxLeader = {
      markAndRead: (acked, inFlight, limit) =>
        Effect.sync(() => {
          const done = new Set(acked)
          const skip = new Set(inFlight)
          const now = new Date()
          for (const row of outbox) if (row.publishedAt === null && done.has(row.event.position)) row.publishedAt = now
          return outbox
            .filter((r) => r.publishedAt === null && !skip.has(r.event.position))
            .slice(0, limit)
            .map((r): OutboxMessage => ({ position: r.event.position, message: toMessage(r.event), metadata: r.event.metadata }))
        })
    }
    return Outbox.of({
      lead: Effect.acquireRelease(
        Effect.sync(() => {
          if (leading) return Option.none<OutboxLeader>()
          leading = true
          return Option.some(leader)
        }),
        (held) => Effect.sync(() => {
          if (Option.isSome(held)) leading = false
        })
      )
    })
  })
)
