/**
 * PostgreSQL EventStore. An append is ONE statement (src/eventstore/AppendStatement.ts: one round trip,
 * atomic) that inserts the events and runs the registered inline projections (InlineProjections) over them.
 * The version guard is twofold: the statement inserts nothing unless the stream is at `expectedVersion`,
 * and UNIQUE(stream_id, version) stops two concurrent appends that both saw the same version. A statement that
 * wrote also NOTIFYs the appends channel (delivered at its commit): relays and watches in other processes wake
 * up without a round trip of their own.
 *
 * Group commit (src/Batcher.ts): appends made while `APPEND_WRITERS` writers are busy are written together,
 * up to `APPEND_BATCH_MAX`, as ONE statement over arrays — one round trip and one commit for many orders,
 * each request still checked and answered on its own (its version, its duplicates). A lone append goes at
 * once. One statement never holds two appends of the same stream (a later one goes in the next round). If the
 * batch statement hits a unique violation (another process appended concurrently) or any other permanent error
 * (src/Infrastructure.ts), it wrote nothing, and its requests are retried one by one, where each gets its own
 * answer: the violation sorted out precisely, the refused append failing alone. An append made inside a
 * transaction (sql.withTransaction) is not batched: it belongs to that transaction.
 *
 * Group read, the same way: stream reads made while `READ_WORKERS` reads are in flight go together, up to
 * `READ_BATCH_MAX` streams, as ONE statement (`stream_id = ANY(...)`), each caller answered its own stream. A
 * cold actor reads its stream before deciding (every payment command in a pipeline process apart from the
 * api): under load those reads share round trips as the appends do. A lone read goes at once.
 */
import { SqlClient, type SqlError } from "@effect/sql"
import { Config, Effect, Either, Layer } from "effect"
import { makeBatcher } from "../Batcher.js"
import type { OrderId } from "../domain/Order.js"
import { classify, orStoreError, type StoreError } from "../Infrastructure.js"
import { appendStatement } from "./AppendStatement.js"
import { eventColumns, type EventRow, toRecordedEvent } from "./EventRows.js"
import { type AppendRequest, type AppendResult, ConcurrencyConflict, EventStore, type RecordedEvent } from "./EventStore.js"
import { InlineProjections } from "./InlineProjection.js"

export const AppendConfig = Config.all({
  /** Most appends written by one statement. */
  batchMax: Config.integer("APPEND_BATCH_MAX").pipe(Config.withDefault(128)),
  /** Writer fibers, i.e. append statements in flight at once (each holds one pool connection meanwhile). */
  writers: Config.integer("APPEND_WRITERS").pipe(Config.withDefault(3)),
  /** Most streams read by one statement. */
  readBatchMax: Config.integer("READ_BATCH_MAX").pipe(Config.withDefault(128)),
  /** Read statements in flight at once (each holds one pool connection meanwhile). */
  readers: Config.integer("READ_WORKERS").pipe(Config.withDefault(2))
})

/** Indices of a batch split so that no statement holds two appends of one stream (later ones go in later
 * rounds, in order). */
const roundsOf = (batch: ReadonlyArray<AppendRequest>): Array<Array<number>> => {
  const rounds: Array<Array<number>> = []
  const last = new Map<string, number>()
  batch.forEach((request, index) => {
    const round = (last.get(request.streamId) ?? -1) + 1
    last.set(request.streamId, round)
    ;(rounds[round] ??= []).push(index)
  })
  return rounds
}

const isUniqueViolation = (error: SqlError.SqlError): boolean => classify(error).sqlState === "23505"

export const PgEventStore = Layer.scoped(
  EventStore,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const config = yield* Effect.orDie(AppendConfig)
    const statement = appendStatement(sql, yield* InlineProjections)

    const conflictOrDuplicate = (streamId: OrderId, expectedVersion: number, eventIds: ReadonlyArray<string>) =>
      sql<{ current: number; duplicates: number }>`
        SELECT (SELECT coalesce(max(version), 0) FROM events WHERE stream_id = ${streamId})::int AS current,
               (SELECT count(*) FROM events WHERE event_id = ANY(${eventIds}::uuid[]))::int AS duplicates`.pipe(
        orStoreError,
        Effect.flatMap(([row]) =>
          row!.duplicates === eventIds.length
            ? Effect.succeed({ version: row!.current, duplicate: true })
            : Effect.fail(new ConcurrencyConflict({ streamId, expectedVersion, actualVersion: row!.current }))
        )
      )

    /** The append statement, for one request or several of distinct streams: each request's outcome, or
     * `undefined` when a unique violation rolled the whole statement back. */
    const appendMany = (requests: ReadonlyArray<AppendRequest>) =>
      statement(requests).pipe(
        Effect.map((outcomes) =>
          outcomes.map((outcome, k): Either.Either<AppendResult, ConcurrencyConflict> => {
            const { events: own, expectedVersion, streamId } = requests[k]!
            if (outcome.inserted > 0) return Either.right({ version: expectedVersion + outcome.inserted, duplicate: false })
            if (outcome.duplicates === own.length) return Either.right({ version: outcome.current, duplicate: true })
            return Either.left(new ConcurrencyConflict({ streamId, expectedVersion, actualVersion: outcome.current }))
          })
        ),
        Effect.catchIf(isUniqueViolation, () => Effect.succeed(undefined)),
        orStoreError
      )

    /** One append in its own statement; a unique violation (a concurrent append elsewhere) is sorted out by
     * reading what is stored: the same events already there is a duplicate, anything else a conflict. */
    const appendOne = (request: AppendRequest) =>
      Effect.flatMap(appendMany([request]), (results) =>
        results === undefined
          ? conflictOrDuplicate(request.streamId, request.expectedVersion, request.events.map((e) => e.eventId))
          : results[0]!)

    const oneByOne = (requests: ReadonlyArray<AppendRequest>) => Effect.forEach(requests, (r) => Effect.either(appendOne(r)))

    /** One round: a lone append alone; several in one statement, or one by one if that hit a violation or a
     * permanent error (one append the database refuses must not fail the others it was batched with). */
    const writeRound = (requests: ReadonlyArray<AppendRequest>) =>
      requests.length === 1
        ? Effect.map(Effect.either(appendOne(requests[0]!)), (r) => [r])
        : Effect.flatMap(appendMany(requests), (results) =>
          results !== undefined
            ? Effect.succeed(results)
            // a concurrent writer elsewhere: nothing was written; one by one, each gets its precise answer
            : oneByOne(requests)).pipe(Effect.catchTag("StoreFailed", () => oneByOne(requests)))

    const batched = yield* makeBatcher({
      maxBatch: config.batchMax,
      workers: config.writers,
      span: "EventStore.appendBatch",
      run: (requests: ReadonlyArray<AppendRequest>) =>
        Effect.gen(function*() {
          const results = new Array<Either.Either<AppendResult, ConcurrencyConflict | StoreError>>(requests.length)
          for (const round of roundsOf(requests)) {
            const answers = yield* writeRound(round.map((i) => requests[i]!))
            round.forEach((i, k) => results[i] = answers[k]!)
          }
          return results
        })
    })

    /** A stream read on the caller's connection (inside its transaction). */
    const readOne = (streamId: OrderId) =>
      sql<EventRow>`SELECT ${sql.literal(eventColumns)} FROM events e WHERE e.stream_id = ${streamId} ORDER BY e.version`.pipe(
        Effect.map((rows) => rows.map(toRecordedEvent)),
        orStoreError
      )

    const read = yield* makeBatcher({
      maxBatch: config.readBatchMax,
      workers: config.readers,
      span: "EventStore.readBatch",
      run: (ids: ReadonlyArray<OrderId>) =>
        ids.length === 1
          ? Effect.map(readOne(ids[0]!), (events) => [Either.right(events)])
          : sql<EventRow>`SELECT ${sql.literal(eventColumns)} FROM events e
              WHERE e.stream_id = ANY(${[...new Set(ids)]}::uuid[]) ORDER BY e.stream_id, e.version`.pipe(
            orStoreError,
            Effect.map((rows) => {
              const streams = new Map<string, Array<RecordedEvent>>()
              for (const row of rows) {
                const stream = streams.get(row.stream_id)
                if (stream) stream.push(toRecordedEvent(row))
                else streams.set(row.stream_id, [toRecordedEvent(row)])
              }
              return ids.map((id) => Either.right<ReadonlyArray<RecordedEvent>>(streams.get(id) ?? []))
            })
          )
    })

    /** Inside the caller's transaction the work is part of it (on its connection, not batched); else batched. */
    const inTransactionOr = <A, B, E>(direct: (a: A) => Effect.Effect<B, E>, batch: (a: A) => Effect.Effect<B, E>) => (a: A) =>
      Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (transaction) =>
        transaction._tag === "Some" ? direct(a) : batch(a))

    return EventStore.of({
      append: inTransactionOr(appendOne, (request) => batched(request, request.deadline)),
      readStream: inTransactionOr(readOne, read)
    })
  })
)
