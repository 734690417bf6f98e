/**
 * The outbox relay's wake-up on the real PostgreSQL: an append in another process wakes this process's relay
 * through LISTEN/NOTIFY (a regression: an empty NOTIFY payload was dropped).
 */
import { assert, describe, layer } from "@effect/vitest"
import { Context, Duration, Effect, Either, Fiber, Layer } from "effect"
import { AppendProjections } from "../src/Stores.js"
import { decide, fold } from "../src/domain/OrderDecider.js"
import { EventStore, OrderAfterAppend } from "../src/eventstore/EventStore.js"
import { PgEventStore } from "../src/eventstore/PgEventStore.js"
import { OutboxSignal, PgOutboxSignal } from "../src/outbox/OutboxSignal.js"
import { cmd, newOrderId } from "./support/fixtures.js"
import { onTestDatabase } from "./support/TestDatabase.js"

describe("relay wake-up across processes", () => {
  // regression: the append NOTIFYd with an empty payload, which @effect/sql-pg's `listen` drops, so relays in
  // other processes only ever published on their poll (found by the API work's watch stream)
  layer(onTestDatabase("relay_wake", Layer.mergeAll(PgOutboxSignal, PgEventStore.pipe(Layer.provide(AppendProjections)))), { excludeTestServices: true, timeout: "60 seconds" })(
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
