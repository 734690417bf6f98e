/**
 * The outbox relay's wake-up on the real PostgreSQL: an append in another process wakes this process's relay
 * through LISTEN/NOTIFY (a regression: an empty NOTIFY payload was dropped). And only a process where someone
 * waits listens (issue 24): PostgreSQL hands every append's notification to every listening backend and the
 * process parses each, so an api whose relay runs elsewhere and whose clients watch nothing must not LISTEN.
 * And a LISTEN connection the server closes is made again, logged and counted (@effect/sql-pg's own listen
 * kept the dead connection: the relay fell back to its poll and order watches to nothing, silently); and it
 * ends with its scope (it was forked inside an uninterruptible region and could not be stopped: every stop of
 * a relay waited out its shutdown step).
 */
import { assert, describe, layer } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Context, Duration, Effect, Either, Exit, Fiber, Layer, Metric, Scope, Stream } from "effect"
import { APPENDS_CHANNEL, listenFailures } from "../src/database/Notifications.js"
import { AppendProjections } from "../src/Stores.js"
import { decide, fold } from "../src/domain/OrderDecider.js"
import { EventStore, OrderAfterAppend } from "../src/eventstore/EventStore.js"
import { PgEventStore } from "../src/eventstore/PgEventStore.js"
import { OrderWatchers, OrderWatchersLive } from "../src/orders/OrderWatch.js"
import { OutboxSignal, PgOutboxSignal } from "../src/outbox/OutboxSignal.js"
import { cmd, newOrderId } from "./support/fixtures.js"
import { waitFor } from "./support/waitFor.js"
import { onTestDatabase, TestDatabase } from "./support/TestDatabase.js"

/** the pids of this database's connections whose last statement was a LISTEN (the listening one stays idle after it) */
const listeners = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.map(
    sql<{ pid: number }>`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'`,
    (rows) => rows.map((r) => r.pid)
  ))
const listening = Effect.map(listeners, (pids) => pids.length)

/** A relay's signal and an event store, on a database of the suite's own. */
const relayAndStore = (suite: string) =>
  layer(onTestDatabase(suite, Layer.mergeAll(PgOutboxSignal, PgEventStore.pipe(Layer.provide(AppendProjections)))), {
    excludeTestServices: true,
    timeout: "60 seconds"
  })

describe("relay wake-up across processes", () => {
  // regression: the append NOTIFYd with an empty payload, which @effect/sql-pg's `listen` drops, so relays in
  // other processes only ever published on their poll (found by the API work's watch stream)
  relayAndStore("relay_wake")(
    (it) => {
      it.effect("an append in another process wakes this process's relay through LISTEN", () =>
        Effect.gen(function*() {
          const signal = yield* OutboxSignal
          const store = yield* EventStore
          // the relay's first wait starts the LISTEN, and is woken once it is up (for what committed before it)
          const first = yield* signal.await(Duration.minutes(5)).pipe(Effect.timeout(Duration.seconds(20)), Effect.option)
          assert.isTrue(first._tag === "Some", "not woken once the LISTEN was up")
          yield* waitFor("the LISTEN connection", listening, (n) => n > 0)
          const woken = yield* Effect.forkScoped(signal.await(Duration.minutes(5)))
          const orderId = newOrderId()
          const events = Either.getOrThrow(decide(cmd.place(orderId), undefined))
          yield* store.append({ streamId: orderId, expectedVersion: 0, events, metadata: {}, inputs: Context.make(OrderAfterAppend, fold(events)!) })
          const exit = yield* Fiber.await(woken).pipe(Effect.timeout(Duration.seconds(20)), Effect.option)
          assert.isTrue(exit._tag === "Some", "the relay was not woken by the append's NOTIFY")
        }).pipe(Effect.scoped))
    }
  )
})

const placeOne = Effect.gen(function*() {
  const store = yield* EventStore
  const orderId = newOrderId()
  const events = Either.getOrThrow(decide(cmd.place(orderId), undefined))
  yield* store.append({ streamId: orderId, expectedVersion: 0, events, metadata: {}, inputs: Context.make(OrderAfterAppend, fold(events)!) })
  return orderId
})

const failuresCounted = Effect.map(Metric.value(Metric.tagged(listenFailures, "channel", APPENDS_CHANNEL)), (s) => s.count)

describe("a LISTEN connection the server closes", () => {
  relayAndStore("relay_relisten")(
    (it) => {
      it.effect("is made again, counted, woken once for what it missed, then by appends again", () =>
        Effect.gen(function*() {
          const signal = yield* OutboxSignal
          const sql = yield* SqlClient.SqlClient
          // the first wait starts the LISTEN and is woken once it is up
          yield* signal.await(Duration.minutes(5)).pipe(Effect.timeout(Duration.seconds(20)))
          const [before] = yield* waitFor("the LISTEN connection", listeners, (pids) => pids.length === 1)
          const counted = yield* failuresCounted
          yield* sql`SELECT pg_terminate_backend(${before!})`
          yield* waitFor("a new LISTEN connection", listeners, (pids) => pids.length === 1 && pids[0] !== before)
          assert.isAbove(yield* failuresCounted, counted, "the loss was not counted")
          // appends committed while nobody listened notified nobody: the relay is woken once when listening again
          const caughtUp = yield* signal.await(Duration.minutes(5)).pipe(Effect.timeout(Duration.seconds(10)), Effect.option)
          assert.isTrue(caughtUp._tag === "Some", "not woken after listening again")
          const woken = yield* Effect.forkScoped(signal.await(Duration.minutes(5)))
          yield* placeOne
          const exit = yield* Fiber.await(woken).pipe(Effect.timeout(Duration.seconds(20)), Effect.option)
          assert.isTrue(exit._tag === "Some", "an append after the loss did not wake the relay")
        }).pipe(Effect.scoped))
    }
  )
})

describe("the appends LISTEN only where someone waits", () => {
  layer(
    onTestDatabase(
      "lazy_listen",
      Layer.mergeAll(PgOutboxSignal, OrderWatchersLive).pipe(Layer.provideMerge(PgEventStore.pipe(Layer.provide(AppendProjections))))
    ),
    { excludeTestServices: true, timeout: "60 seconds" }
  )((it) => {
    it.effect("no LISTEN until the first watcher (or the relay's first wait: the test above)", () =>
      Effect.gen(function*() {
        const orderId = yield* placeOne
        yield* Effect.sleep(Duration.millis(300))
        assert.strictEqual(yield* listening, 0, "nobody waits yet: nothing listens")
        // a watcher: the order watch starts listening
        const frames = yield* (yield* OrderWatchers).watch(orderId, 0)
        const reading = yield* Effect.forkScoped(Stream.runDrain(frames))
        yield* Effect.sleep(Duration.millis(300))
        assert.strictEqual(yield* listening, 1, "a watcher: the LISTEN is up")
        yield* Fiber.interrupt(reading)
      }).pipe(Effect.scoped))
  })
})

describe("the LISTEN ends with its scope", () => {
  layer(TestDatabase("relay_listen_stop"), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("closing the scope stops the listener and closes its connection", () =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const signal = Context.get(yield* Layer.buildWithScope(PgOutboxSignal, scope), OutboxSignal)
        yield* Effect.forkScoped(signal.await(Duration.minutes(5)))
        yield* waitFor("the LISTEN connection", listening, (n) => n === 1)
        yield* Scope.close(scope, Exit.void)
        // not stopped, the listener outlives its step (abandoned at 500 ms) and keeps its connection
        yield* waitFor("no LISTEN connection", listening, (n) => n === 0, Duration.seconds(3))
      }).pipe(Effect.scoped))
  })
})
