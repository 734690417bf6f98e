/**
 * A projection added to the append without touching the event store: a test-only inline projection (its own
 * table, SQL fragment and in-memory twin) registered beside the standard ones. Its row is written in the same
 * transaction as the events (PostgreSQL: the same writing transaction id; with a group-committed batch too),
 * and not at all when the append fails on a version conflict or is a duplicate. Run on both backends.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it, layer } from "@effect/vitest"
import { Cause, ConfigProvider, Context, Effect, Either, Exit, Layer, Option } from "effect"
import { appendProjections } from "../src/Stores.js"
import { MemoryDatabase, memoryTable } from "../src/database/MemoryDatabase.js"
import type { OrderEvent, OrderId } from "../src/domain/Order.js"
import { decide, fold } from "../src/domain/OrderDecider.js"
import { EventStore, OrderAfterAppend } from "../src/eventstore/EventStore.js"
import { inlineProjection, InlineProjections } from "../src/eventstore/InlineProjection.js"
import { MemoryEventStore } from "../src/eventstore/MemoryEventStore.js"
import { PgEventStore } from "../src/eventstore/PgEventStore.js"
import { MemoryOrdersReadModel, OrdersReadModel, PgOrdersReadModel } from "../src/projection/OrdersReadModel.js"
import { cmd, newOrderId } from "./support/fixtures.js"
import { onTestDatabase } from "./support/TestDatabase.js"

/** What the caller hands to the audit projection (read from the append's inputs). */
class AuditNote extends Context.Tag("AuditNote")<AuditNote, string>() {}

interface AuditRow {
  readonly events: number
  readonly note: string | null
  /** PostgreSQL: the row was written by the transaction that wrote the stream's events. */
  readonly withEvents: boolean
}

const MemoryAudit = memoryTable("test_audit", () => new Map<string, Array<AuditRow>>())

const AuditProjection = inlineProjection({
  name: "test_audit",
  pg: {
    input: {
      columns: { stream_id: "uuid", events: "int", note: "text" },
      rows: (request) => [{
        stream_id: request.streamId,
        events: request.events.length,
        note: Option.getOrNull(Context.getOption(request.inputs, AuditNote))
      }]
    },
    write: (sql, { input, written }) => sql`
      INSERT INTO test_audit (stream_id, events, note)
      SELECT stream_id, events, note FROM ${input} WHERE i IN (SELECT i FROM ${written})`
  },
  memory: (db) => {
    const table = db.table(MemoryAudit)
    return (request, recorded) => {
      const row = { events: recorded.length, note: Option.getOrNull(Context.getOption(request.inputs, AuditNote)), withEvents: true }
      table.set(request.streamId, [...(table.get(request.streamId) ?? []), row])
    }
  }
})

const Projections = InlineProjections.layer(...appendProjections, AuditProjection)

/** The audit rows of a stream, on either backend. */
class AuditRows extends Context.Tag("AuditRows")<AuditRows, (streamId: OrderId) => Effect.Effect<ReadonlyArray<AuditRow>>>() {}

const PgAudit = Layer.effect(
  AuditRows,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE test_audit (stream_id uuid NOT NULL, events int NOT NULL, note text,
                                        transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id())`.pipe(Effect.orDie)
    return (streamId: OrderId) =>
      sql<AuditRow>`
        SELECT a.events, a.note,
               a.transaction_id = ALL(SELECT e.transaction_id FROM events e WHERE e.stream_id = a.stream_id) AS "withEvents"
        FROM test_audit a WHERE a.stream_id = ${streamId}`.pipe(Effect.orDie)
  })
)

const MemoryAuditRows = Layer.effect(
  AuditRows,
  Effect.map(MemoryDatabase, (db) => (streamId: OrderId) => Effect.sync(() => db.table(MemoryAudit).get(streamId) ?? []))
)

const placed = (orderId: OrderId): ReadonlyArray<OrderEvent> => Either.getOrThrow(decide(cmd.place(orderId), undefined))

const append = (orderId: OrderId, expectedVersion: number, events: ReadonlyArray<OrderEvent>, note?: string) =>
  Effect.flatMap(EventStore, (store) => {
    let inputs = Context.make(OrderAfterAppend, fold(events)!) as Context.Context<never>
    if (note !== undefined) inputs = Context.add(inputs, AuditNote, note)
    return store.append({ streamId: orderId, expectedVersion, events, metadata: {}, inputs })
  })

const suite = (name: string, stores: Layer.Layer<EventStore | OrdersReadModel | AuditRows>) =>
  describe(`an extra inline projection: ${name}`, () => {
    layer(stores, { excludeTestServices: true })((it) => {
      it.effect("writes its row with the events, beside the standard projections", () =>
        Effect.gen(function*() {
          const id = newOrderId()
          yield* append(id, 0, placed(id), "first")
          assert.deepStrictEqual(yield* (yield* AuditRows)(id), [{ events: 1, note: "first", withEvents: true }])
          assert.isTrue(Option.isSome(yield* (yield* OrdersReadModel).get(id)))
        }))

      it.effect("writes nothing when the append fails on a version conflict, or is a duplicate", () =>
        Effect.gen(function*() {
          const id = newOrderId()
          const events = placed(id)
          yield* append(id, 0, events, "first")
          const conflict = yield* Effect.flip(append(id, 0, placed(id), "conflicting"))
          assert.strictEqual(conflict._tag, "ConcurrencyConflict")
          assert.deepStrictEqual(yield* append(id, 0, events, "again"), { version: 1, duplicate: true })
          assert.deepStrictEqual((yield* (yield* AuditRows)(id)).map((r) => r.note), ["first"])
        }))
    })
  })

suite(
  "in-memory",
  Layer.mergeAll(MemoryEventStore.pipe(Layer.provide(Projections)), MemoryOrdersReadModel, MemoryAuditRows).pipe(
    Layer.provide(MemoryDatabase.layer)
  )
)
suite(
  "PostgreSQL",
  onTestDatabase("inline_projections", Layer.mergeAll(PgEventStore.pipe(Layer.provide(Projections)), PgOrdersReadModel, PgAudit))
)

describe("an extra inline projection in a group-committed batch (PostgreSQL, one writer)", () => {
  const oneWriter = Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["APPEND_WRITERS", "1"]])))
  const stores = Layer.mergeAll(PgEventStore.pipe(Layer.provide(Projections)), PgAudit)
  layer(onTestDatabase("inline_projections_batch", stores).pipe(Layer.provide(oneWriter)), { excludeTestServices: true })((it) => {
    it.effect("each append of the batch gets its own row, in the batch's transaction; the conflicting one none", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const stale = newOrderId()
        yield* append(stale, 0, placed(stale), "first")
        const fresh = Array.from({ length: 12 }, newOrderId)
        const outcomes = yield* Effect.all([
          ...fresh.map((id) => Effect.either(append(id, 0, placed(id), id))),
          Effect.either(append(stale, 0, placed(stale), "conflicting"))
        ], { concurrency: "unbounded" })
        assert.isTrue(outcomes.slice(0, -1).every(Either.isRight))
        assert.isTrue(Either.isLeft(outcomes.at(-1)!))
        const audit = yield* AuditRows
        for (const id of fresh) assert.deepStrictEqual(yield* audit(id), [{ events: 1, note: id, withEvents: true }])
        assert.deepStrictEqual((yield* audit(stale)).map((r) => r.note), ["first"])
        const [shared] = yield* sql<{ streams: number }>`
          SELECT max(n)::int AS streams FROM (
            SELECT count(*) AS n FROM test_audit WHERE stream_id = ANY(${fresh}::uuid[]) GROUP BY transaction_id) t`
        assert.isAbove(shared!.streams, 1, "no two appends shared a statement: the batch was not exercised")
      }))
  })
})

describe("registering inline projections", () => {
  it.effect("a projection registered twice, or named what SQL cannot name, is a defect when the store is built", () =>
    Effect.gen(function*() {
      const twice = yield* Effect.exit(Layer.build(InlineProjections.layer(...appendProjections, AuditProjection, AuditProjection)))
      assert.isTrue(Exit.isFailure(twice) && Cause.pretty(twice.cause).includes("test_audit registered twice"))
      const badName = yield* Effect.exit(Layer.build(InlineProjections.layer({ ...AuditProjection, name: "audit; DROP" })))
      assert.isTrue(Exit.isFailure(badName) && Cause.pretty(badName.cause).includes("lower case letters"))
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(Layer.build(InlineProjections.layer(...appendProjections, AuditProjection)))))
    }).pipe(Effect.scoped))
})
