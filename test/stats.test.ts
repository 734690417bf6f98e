/**
 * The async stats projection: never skips an event committed late by a long transaction (reads stay below
 * the snapshot's xmin), counts and revenue equal the log, and a reset replays it to the same result.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Schedule } from "effect"
import { OrderActors } from "../src/actor/OrderActors.js"
import { Domain, PgStores } from "../src/App.js"
import { OrderPlaced } from "../src/domain/Order.js"
import { fold } from "../src/domain/OrderDecider.js"
import { EventStore } from "../src/eventstore/EventStore.js"
import { StatsProjection } from "../src/projection/AsyncProjections.js"
import { cmd, eur, newId, newOrderId } from "./support/fixtures.js"
import { onTestDatabase } from "./support/TestDatabase.js"

const byState = Effect.map(
  Effect.flatMap(StatsProjection, (s) => s.byState),
  (rows) => Object.fromEntries(rows.filter((r) => Number(r.orders) !== 0).map((r) => [r.status, Number(r.orders)]))
)

/**
 * Step until the projection has applied the whole log. (pg_snapshot_xmin is cluster-wide: a long transaction
 * of another suite, in another database, holds it down for a while, and the projection rightly waits.)
 */
const caughtUp = Effect.flatMap(StatsProjection, (stats) =>
  Effect.repeat(Effect.zipRight(stats.step, stats.lag), {
    until: (lag) => lag === 0,
    schedule: Schedule.spaced("50 millis")
  }).pipe(Effect.timeout("30 seconds"), Effect.orDie))

describe("stats projection", () => {
  layer(onTestDatabase("stats", StatsProjection.Default.pipe(Layer.provideMerge(Domain), Layer.provideMerge(PgStores))), {
    excludeTestServices: true
  })((it) => {
    it.effect("an event committed after later events is not skipped", () =>
      Effect.gen(function*() {
        const stats = yield* StatsProjection
        const store = yield* EventStore
        const sql = yield* SqlClient.SqlClient
        yield* caughtUp
        const before = (yield* byState).CREATED ?? 0
        // transaction A appends first (smaller position) and stays open
        const appended = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const a = cmd.place(newOrderId())
        const events = [new OrderPlaced({ eventId: a.commandId, orderId: a.orderId, userId: a.userId, amount: a.amount, occurredAt: a.at })]
        const longTx = yield* Effect.fork(sql.withTransaction(Effect.gen(function*() {
          yield* store.append({ streamId: a.orderId, expectedVersion: 0, events, state: fold(events)!, metadata: {} })
          yield* Deferred.succeed(appended, undefined)
          yield* Deferred.await(release)
        })))
        yield* Deferred.await(appended)
        // B commits meanwhile: a later transaction, a larger position
        yield* (yield* OrderActors).execute(cmd.place(newOrderId()))
        yield* stats.catchUp
        // B's transaction is above the xmin A holds down: not applied yet (a position checkpoint would apply it
        // and then skip A forever)
        assert.strictEqual((yield* byState).CREATED ?? 0, before)
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(longTx)
        yield* caughtUp
        assert.strictEqual((yield* byState).CREATED, before + 2)
        assert.strictEqual(yield* stats.lag, 0)
      }))

    it.effect("counts per state and revenue per currency and day equal the log; a reset replays the same", () =>
      Effect.gen(function*() {
        const stats = yield* StatsProjection
        const actors = yield* OrderActors
        yield* stats.reset
        const paid = [eur("10.00"), eur("2.50"), eur("0.05")]
        for (const amount of paid) {
          const id = newOrderId()
          const p = newId<never>()
          yield* actors.execute(cmd.place(id, amount))
          yield* actors.execute(cmd.start(p, id))
          yield* actors.execute(cmd.succeed(p, id))
        }
        const cancelled = newOrderId()
        yield* actors.execute(cmd.place(cancelled))
        yield* actors.execute(cmd.cancel(cancelled))
        yield* caughtUp
        const sql = yield* SqlClient.SqlClient
        const expected = yield* sql<{ status: string; n: number }>`SELECT status, count(*)::int AS n FROM orders GROUP BY status`
        assert.deepStrictEqual(yield* byState, Object.fromEntries(expected.map((r) => [r.status, r.n])))
        const revenue = yield* stats.revenue
        const eurToday = revenue.find((r) => r.currency === "EUR" && r.day === "2026-01-02")!
        const [fromLog] = yield* sql<{ n: number; total: string }>`
          SELECT count(*)::int AS n, coalesce(sum(amount_minor), 0)::text AS total FROM orders WHERE status = 'PAID' AND currency = 'EUR'`
        assert.strictEqual(Number(eurToday.paid_orders), fromLog!.n)
        assert.strictEqual(eurToday.revenue_minor, fromLog!.total)
        const snapshot = { states: yield* byState, revenue }
        yield* stats.reset
        yield* caughtUp
        assert.deepStrictEqual({ states: yield* byState, revenue: yield* stats.revenue }, snapshot)
      }))
  })
})
