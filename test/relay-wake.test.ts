/**
 * The outbox relay's wake-up on the real PostgreSQL: an append in another process wakes this process's relay
 * through LISTEN/NOTIFY (a regression: an empty NOTIFY payload was dropped). And only a process where someone
 * waits listens (issue 24): PostgreSQL hands every append's notification to every listening backend and the
 * process parses each, so an api whose relay runs elsewhere and whose clients watch nothing must not LISTEN;
 * and a relay is not woken twice by its own process's appends.
 */
import { assert, describe, layer } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Context, Duration, Effect, Either, Fiber, Layer, Stream } from "effect"
import { AppendProjections } from "../src/Stores.js"
import { decide, fold } from "../src/domain/OrderDecider.js"
import { EventStore, OrderAfterAppend } from "../src/eventstore/EventStore.js"
import { PgEventStore } from "../src/eventstore/PgEventStore.js"
import { AppendsSender } from "../src/database/Notifications.js"
import { OrderWatchers, OrderWatchersLive } from "../src/orders/OrderWatch.js"
import { OutboxSignal, PgOutboxSignal } from "../src/outbox/OutboxSignal.js"
import { cmd, newOrderId } from "./support/fixtures.js"
import { onTestDatabase } from "./support/TestDatabase.js"

describe("relay wake-up across processes", () => {
  // regression: the append NOTIFYd with an empty payload, which @effect/sql-pg's `listen` drops, so relays in
  // other processes only ever published on their poll (found by the API work's watch stream)
  // the appending store plays another process: its NOTIFYs carry another sender than this process's relay's
  const anotherProcess = Layer.succeed(AppendsSender, "another process")
  layer(onTestDatabase("relay_wake", Layer.mergeAll(PgOutboxSignal, PgEventStore.pipe(Layer.provide(AppendProjections), Layer.provide(anotherProcess)))), { excludeTestServices: true, timeout: "60 seconds" })(
    (it) => {
      it.effect("an append in another process wakes this process's relay through LISTEN", () =>
        Effect.gen(function*() {
          const signal = yield* OutboxSignal
          const store = yield* EventStore
          // the LISTEN connection is up once a first notification arrives: append until one wakes us
          const woken = yield* Effect.forkScoped(signal.await(Duration.minutes(5)))
          const orderId = newOrderId()
          const events = Either.getOrThrow(decide(cmd.place(orderId), undefined))
          yield* Effect.sleep(Duration.millis(500))
          yield* store.append({ streamId: orderId, expectedVersion: 0, events, metadata: {}, inputs: Context.make(OrderAfterAppend, fold(events)!) })
          const exit = yield* Fiber.await(woken).pipe(Effect.timeout(Duration.seconds(20)), Effect.option)
          assert.isTrue(exit._tag === "Some", "the relay was not woken by the append's NOTIFY")
        }).pipe(Effect.scoped))
    }
  )
})

/** this database's connections whose last statement was a LISTEN (the listening one stays idle after it) */
const listening = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.map(
    sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'`,
    (rows) => rows[0]!.n
  ))

const placeOne = Effect.gen(function*() {
  const store = yield* EventStore
  const orderId = newOrderId()
  const events = Either.getOrThrow(decide(cmd.place(orderId), undefined))
  yield* store.append({ streamId: orderId, expectedVersion: 0, events, metadata: {}, inputs: Context.make(OrderAfterAppend, fold(events)!) })
  return orderId
})

describe("the appends LISTEN only where someone waits", () => {
  layer(
    onTestDatabase(
      "lazy_listen",
      Layer.mergeAll(PgOutboxSignal, OrderWatchersLive).pipe(Layer.provideMerge(PgEventStore.pipe(Layer.provide(AppendProjections))))
    ),
    { excludeTestServices: true, timeout: "60 seconds" }
  )((it) => {
    it.effect("no LISTEN until the relay's first wait or the first watcher; then one connection listens", () =>
      Effect.gen(function*() {
        const orderId = yield* placeOne
        yield* Effect.sleep(Duration.millis(300))
        assert.strictEqual(yield* listening, 0, "nobody waits yet: nothing listens")
        // a watcher: the order watch starts listening
        const frames = yield* (yield* OrderWatchers).watch(orderId, 0)
        const reading = yield* Effect.forkScoped(Stream.runDrain(frames))
        yield* Effect.sleep(Duration.millis(300))
        assert.strictEqual(yield* listening, 1, "a watcher: the LISTEN is up")
        // the relay's wait: the same connection (one per process)
        yield* Effect.forkScoped(Effect.flatMap(OutboxSignal, (signal) => signal.await(Duration.minutes(5))))
        yield* Effect.sleep(Duration.millis(300))
        assert.strictEqual(yield* listening, 1, "one listening connection per process")
        yield* Fiber.interrupt(reading)
      }).pipe(Effect.scoped))

    it.effect("the relay skips the NOTIFYs of its own process's appends (the actor woke it in-process already)", () =>
      Effect.gen(function*() {
        const signal = yield* OutboxSignal
        // the LISTEN is up (the test above) and the latch closed: a wait that returns at once is a wake
        yield* signal.await(Duration.millis(1))
        const woken = yield* Effect.forkScoped(signal.await(Duration.minutes(5)))
        yield* Effect.sleep(Duration.millis(300))
        yield* placeOne // this process's store, straight (no actor: no in-process wake)
        const exit = yield* Fiber.await(woken).pipe(Effect.timeout(Duration.seconds(2)), Effect.option)
        assert.isTrue(exit._tag === "None", "woken by the NOTIFY of this process's own append")
      }).pipe(Effect.scoped))
  })
})
