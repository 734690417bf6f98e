/**
 * The async stats projection: never skips an event committed late by a long transaction (reads stay below
 * the snapshot's xmin), counts and revenue equal the log, and a reset replays it to the same result.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { Context, Deferred, Effect, Either, Fiber, Layer, Schedule } from "effect"
import { OrderActors } from "../src/actor/OrderActors.js"
import { PgStores } from "../src/Stores.js"
import { OrderPlaced, type PaymentId, PaymentRequested } from "../src/domain/Order.js"
import { encodeEvent } from "../src/eventstore/EventCodec.js"
import { fold } from "../src/domain/OrderDecider.js"
import { EventStore, OrderAfterAppend } from "../src/eventstore/EventStore.js"
import { StatsProjection } from "../src/projection/StatsProjection.js"
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

/** Orders per state as the log says: the last event of every stream decides. */
const fromLog = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ status: string; n: number }>`
    SELECT CASE last WHEN 'OrderPlaced' THEN 'CREATED' WHEN 'PaymentRequested' THEN 'PAYMENT_PENDING'
                      WHEN 'OrderPaid' THEN 'PAID' WHEN 'OrderFailed' THEN 'FAILED' ELSE 'CANCELLED' END AS status,
           count(*)::int AS n
    FROM (SELECT (array_agg(type ORDER BY version DESC))[1] AS last FROM events GROUP BY stream_id) s
    GROUP BY 1`).pipe(Effect.map((rows) => Object.fromEntries(rows.map((r) => [r.status, r.n]))), Effect.orDie)

describe("stats projection", () => {
  layer(onTestDatabase("stats", StatsProjection.Default.pipe(Layer.provideMerge(OrderActors.Default), Layer.provideMerge(PgStores))), {
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
          yield* store.append({ streamId: a.orderId, expectedVersion: 0, events, metadata: {}, inputs: Context.make(OrderAfterAppend, fold(events)!) })
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

    it.effect("regression: transaction ids of different digit counts are read in numeric order", () =>
      Effect.gen(function*() {
        // found on a long-lived database: ordering by the text of the transaction id read "730" after "63356",
        // moved the checkpoint back and applied a batch twice. Events written by transactions 9 and 10:
        const sql = yield* SqlClient.SqlClient
        const id = newOrderId()
        const placed = cmd.place(id)
        const start = cmd.start(newId<PaymentId>(), id)
        const e1 = encodeEvent(new OrderPlaced({ eventId: placed.commandId, orderId: id, userId: placed.userId, amount: placed.amount, occurredAt: placed.at }))
        const e2 = encodeEvent(new PaymentRequested({ eventId: start.commandId, orderId: id, paymentId: start.paymentId, occurredAt: start.at }))
        yield* sql`
          INSERT INTO events (stream_id, version, event_id, type, schema_version, data, transaction_id) VALUES
            (${id}, 1, ${placed.commandId}, ${e1.type}, 1, ${JSON.stringify(e1.data)}::jsonb, '9'::xid8),
            (${id}, 2, ${start.commandId}, ${e2.type}, 1, ${JSON.stringify(e2.data)}::jsonb, '10'::xid8)`
        const stats = yield* StatsProjection
        yield* stats.reset
        yield* caughtUp
        assert.deepStrictEqual(yield* byState, yield* fromLog)
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
        assert.deepStrictEqual(yield* byState, yield* fromLog)
        const revenue = yield* stats.revenue
        const eurToday = revenue.find((r) => r.currency === "EUR" && r.day === "2026-01-02")!
        const [paidInLog] = yield* sql<{ n: number; total: string }>`
          SELECT count(*)::int AS n, coalesce(sum(amount_minor), 0)::text AS total FROM orders WHERE status = 'PAID' AND currency = 'EUR'`
        assert.strictEqual(Number(eurToday.paid_orders), paidInLog!.n)
        assert.strictEqual(eurToday.revenue_minor, paidInLog!.total)
        const snapshot = { states: yield* byState, revenue }
        yield* stats.reset
        yield* caughtUp
        assert.deepStrictEqual({ states: yield* byState, revenue: yield* stats.revenue }, snapshot)
      }))

    it.effect("a projector's pass does not wait for another projector: nothing at once while the checkpoint is held", () =>
      Effect.gen(function*() {
        const stats = yield* StatsProjection
        const sql = yield* SqlClient.SqlClient
        yield* caughtUp
        yield* (yield* OrderActors).execute(cmd.place(newOrderId()))
        // another projector, mid-pass: the checkpoint row locked in its open transaction
        const locked = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const other = yield* Effect.fork(sql.withTransaction(Effect.gen(function*() {
          yield* sql`SELECT 1 FROM projection_checkpoints WHERE name = 'stats' FOR UPDATE`
          yield* Deferred.succeed(locked, undefined)
          yield* Deferred.await(release)
        })))
        yield* Deferred.await(locked)
        const skipped = yield* stats.pass.pipe(Effect.timeout("3 seconds"), Effect.either)
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(other)
        assert.deepStrictEqual(skipped, Either.right(0), "the pass waited for the other projector (or applied under its lock)")
        // once it is free, the pass applies what is new
        let applied = 0
        for (let tries = 0; applied === 0 && tries < 600; tries++) {
          applied = yield* stats.pass
          if (applied === 0) yield* Effect.sleep("50 millis")
        }
        assert.isAbove(applied, 0)
        assert.strictEqual(yield* stats.lag, 0)
      }))
  })
})
