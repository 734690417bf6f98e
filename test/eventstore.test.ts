/**
 * The event store contract (DESIGN §4), one suite run against both implementations:
 * in-memory and PostgreSQL. Also: the PostgreSQL append writes outbox rows and the projection atomically.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Either, Layer, Option } from "effect"
import type { Order, OrderEvent, OrderId } from "../src/domain/Order.js"
import { fold } from "../src/domain/OrderDecider.js"
import { MemoryStores, PgStores } from "../src/App.js"
import { EventStore } from "../src/eventstore/EventStore.js"
import { OrdersReadModel } from "../src/projection/OrdersProjection.js"
import { cmd, newOrderId, p1 } from "./support/fixtures.js"
import { onTestDatabase } from "./support/TestDatabase.js"
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
      state: fold(events, fold(before)) as Order,
      metadata: { correlationId: "test" }
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
          assert.strictEqual(conflict.actualVersion, 2)
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
          assert.strictEqual(conflict.actualVersion, 1)
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
    it.effect("one outbox row per event and the writing transaction id, in the append's transaction", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const id = newOrderId()
        yield* append(id, 0, history(id))
        const rows = yield* sql<{ n: number; txs: number }>`
          SELECT count(*)::int AS n, count(DISTINCT o.transaction_id)::int AS txs
          FROM outbox o JOIN events e USING (position)
          WHERE e.stream_id = ${id} AND e.transaction_id = o.transaction_id AND o.published_at IS NULL`
        assert.deepStrictEqual(rows[0], { n: 3, txs: 1 })
      }))
  })
})
