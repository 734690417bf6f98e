/**
 * The event store contract (docs/ARCHITECTURE.md "Event store contract"), one suite run against both implementations:
 * in-memory and PostgreSQL. Also: the PostgreSQL append writes outbox rows and the projection atomically.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Either, Layer, Option } from "effect"
import pg from "pg"
import type { Order, OrderEvent, OrderId } from "../src/domain/Order.js"
import { fold } from "../src/domain/OrderDecider.js"
import { MemoryStores, PgStores } from "../src/Stores.js"
import { EventStore, OrderAfterAppend } from "../src/eventstore/EventStore.js"
import { OrdersReadModel } from "../src/projection/OrdersReadModel.js"
import { cmd, newOrderId, p1 } from "./support/fixtures.js"
import { onTestDatabase } from "./support/TestDatabase.js"
import { refuseRows } from "./support/refuseRows.js"
import { decide } from "../src/domain/OrderDecider.js"

/** Events of a fresh order: placed, payment requested, paid — with unique ids. */
const history = (orderId: OrderId): ReadonlyArray<OrderEvent> => {
  const events: Array<OrderEvent> = []
  for (const c of [cmd.place(orderId), cmd.start(p1, orderId), cmd.succeed(p1, orderId)]) {
    events.push(...Either.getOrThrow(decide(c, fold(events))))
  }
  return events
}

const append = (orderId: OrderId, expectedVersion: number, events: ReadonlyArray<OrderEvent>, before: ReadonlyArray<OrderEvent> = []) =>
  Effect.flatMap(EventStore, (store) =>
    store.append({
      streamId: orderId,
      expectedVersion,
      events,
      metadata: { correlationId: "test" },
      inputs: Context.make(OrderAfterAppend, fold(events, fold(before)) as Order)
    }))

const contract = (name: string, stores: Layer.Layer<EventStore | OrdersReadModel>) =>
  describe(`EventStore contract: ${name}`, () => {
    layer(stores, { excludeTestServices: true })((it) => {
      it.effect("appends to a new stream and reads it back in version order", () =>
        Effect.gen(function*() {
          const store = yield* EventStore
          const id = newOrderId()
          const events = history(id)
          const result = yield* append(id, 0, events)
          assert.deepStrictEqual(result, { version: 3, duplicate: false })
          const read = yield* store.readStream(id)
          assert.deepStrictEqual(read.map((r) => r.version), [1, 2, 3])
          assert.deepStrictEqual(read.map((r) => r.event), events)
          assert.deepStrictEqual(read.map((r) => r.schemaVersion), [1, 1, 1])
          assert.strictEqual(read[0]!.metadata.correlationId, "test")
          assert.isTrue(read[0]!.position < read[1]!.position && read[1]!.position < read[2]!.position)
        }))

      it.effect("writes the projection row of the resulting state with the append", () =>
        Effect.gen(function*() {
          const id = newOrderId()
          const events = history(id)
          yield* append(id, 0, events.slice(0, 1))
          assert.strictEqual(Option.getOrThrow(yield* (yield* OrdersReadModel).get(id)).status, "CREATED")
          yield* append(id, 1, events.slice(1), events.slice(0, 1))
          const row = Option.getOrThrow(yield* (yield* OrdersReadModel).get(id))
          assert.deepStrictEqual(row, fold(events))
        }))

      it.effect("a stale expected version fails with ConcurrencyConflict and writes nothing", () =>
        Effect.gen(function*() {
          const store = yield* EventStore
          const id = newOrderId()
          const events = history(id)
          yield* append(id, 0, events.slice(0, 2))
          const conflict = yield* Effect.flip(append(id, 1, events.slice(2), events.slice(0, 1)))
          assert.strictEqual(conflict._tag, "ConcurrencyConflict")
          assert.strictEqual(conflict._tag === "ConcurrencyConflict" && conflict.actualVersion, 2)
          assert.strictEqual((yield* store.readStream(id)).length, 2)
          assert.strictEqual(Option.getOrThrow(yield* (yield* OrdersReadModel).get(id)).version, 2)
        }))

      it.effect("an expected version ahead of the stream is a conflict too (no gaps)", () =>
        Effect.gen(function*() {
          const store = yield* EventStore
          const id = newOrderId()
          const events = history(id)
          yield* append(id, 0, events.slice(0, 1))
          const conflict = yield* Effect.flip(append(id, 2, events.slice(2), events.slice(0, 2)))
          assert.strictEqual(conflict._tag === "ConcurrencyConflict" && conflict.actualVersion, 1)
          assert.deepStrictEqual((yield* store.readStream(id)).map((r) => r.version), [1])
        }))

      it.effect("appending already-stored event ids again is a no-op success", () =>
        Effect.gen(function*() {
          const store = yield* EventStore
          const id = newOrderId()
          const events = history(id)
          yield* append(id, 0, events)
          for (let k = 0; k < 3; k++) {
            assert.deepStrictEqual(yield* append(id, 0, events), { version: 3, duplicate: true })
          }
          assert.deepStrictEqual(yield* append(id, 1, events.slice(1), events.slice(0, 1)), { version: 3, duplicate: true })
          assert.strictEqual((yield* store.readStream(id)).length, 3)
        }))

      it.effect("of concurrent appends at the same expected version exactly one wins", () =>
        Effect.gen(function*() {
          const store = yield* EventStore
          const id = newOrderId()
          const events = history(id)
          yield* append(id, 0, events.slice(0, 1))
          const rivals = Array.from({ length: 8 }, () =>
            Either.getOrThrow(decide(cmd.start(p1, id), fold(events.slice(0, 1)))))
          const results = yield* Effect.all(
            rivals.map((e) => Effect.either(append(id, 1, e, events.slice(0, 1)))),
            { concurrency: "unbounded" }
          )
          assert.strictEqual(results.filter(Either.isRight).length, 1)
          assert.isTrue(results.filter(Either.isLeft).every((r) => r.left._tag === "ConcurrencyConflict"))
          assert.deepStrictEqual((yield* store.readStream(id)).map((r) => r.version), [1, 2])
        }))

      it.effect("an unknown stream reads as empty", () =>
        Effect.gen(function*() {
          assert.deepStrictEqual(yield* (yield* EventStore).readStream(newOrderId()), [])
        }))
    })
  })

contract("in-memory", MemoryStores)
contract("PostgreSQL", onTestDatabase("eventstore_contract", PgStores))

describe("PgEventStore specifics", () => {
  layer(onTestDatabase("eventstore_pg", PgStores), { excludeTestServices: true })((it) => {
    it.effect("one outbox row per event, in the append's transaction", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const id = newOrderId()
        yield* append(id, 0, history(id))
        // now() is the transaction's start: rows written at the events' recorded_at were written in their transaction
        const rows = yield* sql<{ n: number; txs: number }>`
          SELECT count(*)::int AS n, count(DISTINCT o.created_at)::int AS txs
          FROM outbox o JOIN events e USING (position)
          WHERE e.stream_id = ${id} AND e.recorded_at = o.created_at AND o.published_at IS NULL`
        assert.deepStrictEqual(rows[0], { n: 3, txs: 1 })
      }))
  })
})

describe("PgEventStore group commit (one writer, so concurrent appends queue and share a statement)", () => {
  const oneWriter = Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["APPEND_WRITERS", "1"]])))
  layer(onTestDatabase("eventstore_batch", PgStores).pipe(Layer.provide(oneWriter)), { excludeTestServices: true })((it) => {
    it.effect("concurrent appends of many orders commit together, each stream in version order", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const ids = Array.from({ length: 40 }, newOrderId)
        const results = yield* Effect.forEach(ids, (id) => append(id, 0, history(id)), { concurrency: "unbounded" })
        assert.deepStrictEqual(results, ids.map(() => ({ version: 3, duplicate: false })))
        const [shared] = yield* sql<{ streams: number }>`
          SELECT max(n)::int AS streams FROM (
            SELECT count(DISTINCT stream_id) AS n FROM events WHERE stream_id = ANY(${ids}::uuid[]) GROUP BY transaction_id) t`
        assert.isAbove(shared!.streams, 1, "no two orders shared a transaction: appends were not batched")
        const disorder = yield* sql<{ stream_id: string }>`
          SELECT a.stream_id FROM events a JOIN events b ON a.stream_id = b.stream_id AND a.version < b.version
          WHERE a.stream_id = ANY(${ids}::uuid[]) AND a.position > b.position`
        assert.strictEqual(disorder.length, 0)
        const [counts] = yield* sql<{ outbox: number; paid: number }>`
          SELECT (SELECT count(*) FROM outbox WHERE stream_id = ANY(${ids}::uuid[]))::int AS outbox,
                 (SELECT count(*) FROM orders WHERE order_id = ANY(${ids}::uuid[]) AND status = 'PAID' AND version = 3)::int AS paid`
        assert.deepStrictEqual(counts, { outbox: 120, paid: 40 })
      }))

    it.effect("in one batch, a conflict and a duplicate get their own answers and do not stop the others", () =>
      Effect.gen(function*() {
        const store = yield* EventStore
        const stale = newOrderId()
        const again = newOrderId()
        yield* append(stale, 0, history(stale).slice(0, 1))
        const againEvents = history(again)
        yield* append(again, 0, againEvents)
        const fresh = Array.from({ length: 10 }, newOrderId)
        const outcomes = yield* Effect.all([
          ...fresh.map((id) => Effect.either(append(id, 0, history(id)))),
          Effect.either(append(stale, 0, history(stale).slice(0, 1))),
          Effect.either(append(again, 0, againEvents))
        ], { concurrency: "unbounded" })
        for (const o of outcomes.slice(0, 10)) assert.deepStrictEqual(o, Either.right({ version: 3, duplicate: false }))
        const conflict = outcomes[10]!
        assert.isTrue(Either.isLeft(conflict) && conflict.left._tag === "ConcurrencyConflict" && conflict.left.actualVersion === 1)
        assert.deepStrictEqual(outcomes[11], Either.right({ version: 3, duplicate: true }))
        assert.strictEqual((yield* store.readStream(stale)).length, 1)
        assert.strictEqual((yield* store.readStream(again)).length, 3)
      }))

    it.effect("in one batch, an append the database refuses (permanent) fails alone, typed; the others are written", () =>
      Effect.gen(function*() {
        const store = yield* EventStore
        const refused = newOrderId()
        const removeRefusal = yield* refuseRows({
          name: "refuse_stream",
          table: "events",
          on: "INSERT",
          when: `NEW.stream_id = '${refused}'`,
          sqlState: "23514",
          message: "refused"
        })
        const fresh = Array.from({ length: 10 }, newOrderId)
        // the first append goes alone (the writer is idle); the rest queue behind it and share one statement
        const ids = [...fresh.slice(0, 5), refused, ...fresh.slice(5)]
        const outcomes = yield* Effect.all(ids.map((id) => Effect.either(append(id, 0, history(id)))), { concurrency: "unbounded" })
        yield* removeRefusal
        const refusal = outcomes[5]!
        assert.isTrue(Either.isLeft(refusal) && refusal.left._tag === "StoreFailed" && refusal.left.sqlState === "23514")
        for (const o of outcomes.filter((_, i) => i !== 5)) assert.deepStrictEqual(o, Either.right({ version: 3, duplicate: false }))
        assert.strictEqual((yield* store.readStream(refused)).length, 0)
      }))

    it.effect("an append inside a transaction is part of it: rolled back with it", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* EventStore
        const id = newOrderId()
        const failed = yield* sql.withTransaction(
          Effect.zipRight(append(id, 0, history(id)), Effect.fail("rollback" as const))
        ).pipe(Effect.flip)
        assert.strictEqual(failed, "rollback")
        assert.strictEqual((yield* store.readStream(id)).length, 0)
      }))

    it.effect("a batch that hits a unique violation wrote nothing and is retried one by one", () =>
      Effect.gen(function*() {
        const store = yield* EventStore
        // two streams given the same event id: each passes the batch's checks, the batch statement violates
        // UNIQUE(event_id) and rolls back; one by one, the first wins and the second finds its id stored
        const a = newOrderId()
        const b = newOrderId()
        const placed = history(a)[0]!
        const others = Array.from({ length: 8 }, newOrderId)
        const outcomes = yield* Effect.all([
          ...others.map((id) => append(id, 0, history(id))),
          append(a, 0, [placed]),
          append(b, 0, [placed])
        ], { concurrency: "unbounded" })
        for (const o of outcomes.slice(0, 8)) assert.deepStrictEqual(o, { version: 3, duplicate: false })
        const stored = [(yield* store.readStream(a)).length, (yield* store.readStream(b)).length]
        assert.deepStrictEqual([...stored].sort(), [0, 1])
        for (const id of others) assert.strictEqual((yield* store.readStream(id)).length, 3)
      }))
  })
})

describe("PgEventStore group read (one reader, so concurrent stream reads queue and share a statement)", () => {
  const oneReader = Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["READ_WORKERS", "1"]])))
  layer(onTestDatabase("eventstore_read_batch", PgStores).pipe(Layer.provide(oneReader)), { excludeTestServices: true })((it) => {
    it.effect("concurrent reads of many streams: each caller its own stream in version order, in a few statements", () =>
      Effect.gen(function*() {
        const store = yield* EventStore
        const ids = Array.from({ length: 30 }, newOrderId)
        yield* Effect.forEach(ids, (id, i) => append(id, 0, history(id).slice(0, 1 + (i % 3))), { concurrency: "unbounded" })
        const unknown = newOrderId()
        // the statements this process sends that read streams (node-postgres's query, under @effect/sql-pg)
        let reads = 0
        const query = pg.Client.prototype.query
        const counting = function(this: pg.Client, ...args: Array<any>) {
          const text = typeof args[0] === "string" ? args[0] : args[0]?.text
          if (typeof text === "string" && /FROM events e\s+WHERE e\.stream_id/.test(text)) reads++
          return (query as any).apply(this, args)
        }
        pg.Client.prototype.query = counting as typeof query
        const asked = [...ids, ids[0]!, unknown, ids[1]!]
        const streams = yield* Effect.forEach(asked, (id) => store.readStream(id), { concurrency: "unbounded" }).pipe(
          Effect.ensuring(Effect.sync(() => pg.Client.prototype.query = query))
        )
        asked.forEach((id, i) => {
          const expected = id === unknown ? 0 : 1 + (ids.indexOf(id) % 3)
          assert.deepStrictEqual(streams[i]!.map((e) => [e.streamId, e.version]), Array.from({ length: expected }, (_, v) => [id, v + 1]), `stream ${i}`)
          if (expected > 0) assert.strictEqual(streams[i]![0]!.event._tag, "OrderPlaced")
        })
        assert.isAtMost(reads, 3, `${asked.length} concurrent reads took ${reads} statements: not batched`)
      }))
  })
})
