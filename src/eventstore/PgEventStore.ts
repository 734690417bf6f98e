/**
 * PostgreSQL EventStore. An append is ONE statement (one round trip, atomic): data-modifying CTEs insert the
 * events, their outbox rows, upsert the `orders` projection row and complete the idempotency record.
 * The version guard is twofold: the statement inserts nothing unless the stream is at `expectedVersion`,
 * and UNIQUE(stream_id, version) stops two concurrent appends that both saw the same version. A statement that
 * wrote also NOTIFYs the outbox channel (delivered at its commit): relays in other processes wake up without
 * a round trip of their own.
 *
 * Group commit (src/Batcher.ts): appends made while `APPEND_WRITERS` writers are busy are written together,
 * up to `APPEND_BATCH_MAX`, as ONE statement over arrays — one round trip and one commit for many orders,
 * each request still checked and answered on its own (its version, its duplicates). A lone append goes at
 * once. One statement never holds two appends of the same stream (a later one goes in the next round). If the
 * batch statement hits a unique violation (another process appended concurrently), it wrote nothing, and its
 * requests are retried one by one, where the violation is sorted out precisely. An append made inside a
 * transaction (sql.withTransaction) is not batched: it belongs to that transaction.
 */
import { SqlClient, type SqlError } from "@effect/sql"
import { Config, Effect, Either, Layer } from "effect"
import { makeBatcher } from "../Batcher.js"
import { OUTBOX_CHANNEL } from "../outbox/OutboxSignal.js"
import type { Order, OrderId } from "../domain/Order.js"
import { Money } from "../domain/Money.js"
import { decodeEvent, encodeEvent } from "./EventCodec.js"
import {
  type AppendRequest,
  type AppendResult,
  ConcurrencyConflict,
  EventStore,
  type RecordedEvent
} from "./EventStore.js"

export const AppendConfig = Config.all({
  /** Most appends written by one statement. */
  batchMax: Config.integer("APPEND_BATCH_MAX").pipe(Config.withDefault(128)),
  /** Writer fibers, i.e. append statements in flight at once (each holds one pool connection meanwhile). */
  writers: Config.integer("APPEND_WRITERS").pipe(Config.withDefault(3))
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

const isUniqueViolation = (error: SqlError.SqlError): boolean =>
  (error.cause as { code?: unknown } | undefined)?.code === "23505"

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

export const toRecordedEvent = (row: EventRow): RecordedEvent => ({
  position: BigInt(row.position),
  streamId: row.stream_id as OrderId,
  version: row.version,
  schemaVersion: row.schema_version,
  event: decodeEvent(row.type, row.schema_version, row.data),
  metadata: row.metadata,
  recordedAt: row.recorded_at
})

/** Column values of the `orders` projection row for an order state. */
export const orderRowValues = (order: Order) => ({
  order_id: order.orderId,
  user_id: order.userId,
  amount_minor: order.amount.minor.toString(),
  currency: order.amount.currency,
  status: order.status,
  payment_id: order.paymentId,
  reason: order.reason,
  version: order.version,
  created_at: order.createdAt,
  updated_at: order.updatedAt
})

export interface OrderRow {
  readonly order_id: string
  readonly user_id: string
  readonly amount_minor: string
  readonly currency: string
  readonly status: string
  readonly payment_id: string | null
  readonly reason: string | null
  readonly version: number
  readonly created_at: Date
  readonly updated_at: Date
}

export const orderFromRow = (row: OrderRow): Order => ({
  orderId: row.order_id as Order["orderId"],
  userId: row.user_id as Order["userId"],
  amount: new Money({ minor: BigInt(row.amount_minor), currency: row.currency as Money["currency"] }, { disableValidation: true }),
  status: row.status as Order["status"],
  paymentId: row.payment_id as Order["paymentId"],
  reason: row.reason,
  version: row.version,
  createdAt: row.created_at,
  updatedAt: row.updated_at
})

export const PgEventStore = Layer.scoped(
  EventStore,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const config = yield* Effect.orDie(AppendConfig)

    const conflictOrDuplicate = (streamId: OrderId, expectedVersion: number, eventIds: ReadonlyArray<string>) =>
      sql<{ current: number; duplicates: number }>`
        SELECT (SELECT coalesce(max(version), 0) FROM events WHERE stream_id = ${streamId})::int AS current,
               (SELECT count(*) FROM events WHERE event_id = ANY(${eventIds}::uuid[]))::int AS duplicates`.pipe(
        Effect.orDie,
        Effect.flatMap(([row]) =>
          row!.duplicates === eventIds.length
            ? Effect.succeed({ version: row!.current, duplicate: true })
            : Effect.fail(new ConcurrencyConflict({ streamId, expectedVersion, actualVersion: row!.current }))
        )
      )

    /** The append statement, for one request or several of distinct streams: each request's outcome, or
     * `undefined` when a unique violation rolled the whole statement back. */
    const appendMany = (requests: ReadonlyArray<AppendRequest>) => {
      const col = <A>(f: (r: AppendRequest) => A) => requests.map(f)
      const rows = requests.map((r) => orderRowValues(r.state))
      const events = requests.flatMap((r, i) => r.events.map((e) => ({ i: i + 1, id: e.eventId, encoded: encodeEvent(e) })))
      return sql<{ i: number; current: number; duplicates: number; inserted: number }>`
        WITH r AS (
          SELECT * FROM unnest(
            ${col((r) => r.streamId)}::uuid[], ${col((r) => r.expectedVersion)}::int[],
            ${col((r) => JSON.stringify(r.metadata))}::jsonb[],
            ${rows.map((o) => o.user_id)}::uuid[], ${rows.map((o) => o.amount_minor)}::bigint[],
            ${rows.map((o) => o.currency)}::text[], ${rows.map((o) => o.status)}::text[],
            ${rows.map((o) => o.payment_id)}::uuid[], ${rows.map((o) => o.reason)}::text[],
            ${rows.map((o) => o.version)}::int[], ${rows.map((o) => o.created_at.toISOString())}::timestamptz[],
            ${rows.map((o) => o.updated_at.toISOString())}::timestamptz[],
            ${col((r) => r.idempotency?.key ?? null)}::text[], ${col((r) => r.idempotency?.status ?? null)}::smallint[],
            ${col((r) => (r.idempotency ? JSON.stringify(r.idempotency.body) : null))}::jsonb[],
            ${col((r) => r.inbox?.consumer ?? null)}::text[], ${col((r) => r.inbox?.messageId ?? null)}::uuid[]
          ) WITH ORDINALITY AS r(stream_id, expected, metadata, user_id, amount_minor, currency, status, payment_id,
                                 reason, version, created_at, updated_at, idem_key, idem_status, idem_body,
                                 inbox_consumer, inbox_message, i)
        ),
        e AS (
          SELECT * FROM unnest(${events.map((e) => e.i)}::int[], ${events.map((e) => e.id)}::uuid[],
                               ${events.map((e) => e.encoded.type)}::text[],
                               ${events.map((e) => e.encoded.schemaVersion)}::smallint[],
                               ${events.map((e) => JSON.stringify(e.encoded.data))}::jsonb[])
            WITH ORDINALITY AS e(i, event_id, type, schema_version, data, n)
        ),
        chk AS (
          SELECT r.i,
                 (SELECT coalesce(max(x.version), 0) FROM events x WHERE x.stream_id = r.stream_id)::int AS current,
                 (SELECT count(*) FROM e JOIN events x ON x.event_id = e.event_id WHERE e.i = r.i)::int AS duplicates
          FROM r
        ),
        ok AS (
          SELECT r.* FROM r JOIN chk ON chk.i = r.i
          WHERE chk.current = r.expected AND chk.duplicates = 0 AND EXISTS (SELECT 1 FROM e WHERE e.i = r.i)
        ),
        ins AS (
          INSERT INTO events (stream_id, version, event_id, type, schema_version, data, metadata)
          SELECT ok.stream_id, ok.expected + (row_number() OVER (PARTITION BY e.i ORDER BY e.n))::int, e.event_id,
                 e.type, e.schema_version, e.data, ok.metadata
          FROM e JOIN ok ON ok.i = e.i
          ORDER BY e.n
          RETURNING position, stream_id
        ),
        ob AS (INSERT INTO outbox (position, stream_id) SELECT position, stream_id FROM ins),
        proj AS (
          INSERT INTO orders (order_id, user_id, amount_minor, currency, status, payment_id, reason, version,
                              created_at, updated_at)
          SELECT ok.stream_id, ok.user_id, ok.amount_minor, ok.currency, ok.status, ok.payment_id, ok.reason, ok.version,
                 ok.created_at, ok.updated_at
          FROM ok
          ON CONFLICT (order_id) DO UPDATE SET
            status = EXCLUDED.status, payment_id = EXCLUDED.payment_id, reason = EXCLUDED.reason,
            version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
          WHERE orders.version < EXCLUDED.version
        ),
        idem AS (
          UPDATE idempotency_keys k
             SET status = 'completed', response_status = ok.idem_status, response_body = ok.idem_body
            FROM ok WHERE k.key = ok.idem_key
        ),
        inb AS (
          INSERT INTO inbox (consumer, message_id)
          SELECT ok.inbox_consumer, ok.inbox_message FROM ok WHERE ok.inbox_consumer IS NOT NULL
          ON CONFLICT DO NOTHING
        ),
        note AS (SELECT pg_notify(${OUTBOX_CHANNEL}, 'append') FROM (SELECT 1 FROM ins LIMIT 1) wrote)
        -- \`notified\` is read by nobody: selecting from \`note\` is what makes PostgreSQL evaluate it
        SELECT chk.i::int AS i, chk.current, chk.duplicates,
               (SELECT count(*) FROM ins WHERE ins.stream_id = r.stream_id)::int AS inserted,
               (SELECT count(*) FROM note)::int AS notified
        FROM chk JOIN r ON r.i = chk.i
        ORDER BY chk.i`.pipe(
        Effect.map((results) =>
          results.map((result, k): Either.Either<AppendResult, ConcurrencyConflict> => {
            const { events: own, expectedVersion, streamId } = requests[k]!
            if (result.inserted > 0) return Either.right({ version: expectedVersion + result.inserted, duplicate: false })
            if (result.duplicates === own.length) return Either.right({ version: result.current, duplicate: true })
            return Either.left(new ConcurrencyConflict({ streamId, expectedVersion, actualVersion: result.current }))
          })
        ),
        Effect.catchIf(isUniqueViolation, () => Effect.succeed(undefined)),
        Effect.orDie
      )
    }

    /** One append in its own statement; a unique violation (a concurrent append elsewhere) is sorted out by
     * reading what is stored: the same events already there is a duplicate, anything else a conflict. */
    const appendOne = (request: AppendRequest) =>
      Effect.flatMap(appendMany([request]), (results) =>
        results === undefined
          ? conflictOrDuplicate(request.streamId, request.expectedVersion, request.events.map((e) => e.eventId))
          : results[0]!)

    /** One round: a lone append alone; several in one statement, or one by one if that hit a violation. */
    const writeRound = (requests: ReadonlyArray<AppendRequest>) =>
      requests.length === 1
        ? Effect.map(Effect.either(appendOne(requests[0]!)), (r) => [r])
        : Effect.flatMap(appendMany(requests), (results) =>
          results !== undefined
            ? Effect.succeed(results)
            // a concurrent writer elsewhere: nothing was written; one by one, each gets its precise answer
            : Effect.forEach(requests, (r) => Effect.either(appendOne(r))))

    const batched = yield* makeBatcher({
      maxBatch: config.batchMax,
      workers: config.writers,
      run: (requests: ReadonlyArray<AppendRequest>) =>
        Effect.gen(function*() {
          const results = new Array<Either.Either<AppendResult, ConcurrencyConflict>>(requests.length)
          for (const round of roundsOf(requests)) {
            const answers = yield* writeRound(round.map((i) => requests[i]!))
            round.forEach((i, k) => results[i] = answers[k]!)
          }
          return results
        })
    })

    return EventStore.of({
      append: (request) =>
        Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (transaction) =>
          transaction._tag === "Some"
            // inside the caller's transaction the append is part of it: written on its connection, not batched
            ? appendOne(request)
            : batched(request)),

      readStream: (streamId) =>
        sql<EventRow>`
          SELECT position::text AS position, stream_id, version, type, schema_version, data, metadata, recorded_at
          FROM events WHERE stream_id = ${streamId} ORDER BY version`.pipe(
          Effect.map((rows) => rows.map(toRecordedEvent)),
          Effect.orDie
        )
    })
  })
)
