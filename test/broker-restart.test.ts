/**
 * The Kafka broker stopped and restarted under load: orders keep being accepted (the append does not need
 * Kafka), the outbox holds their events, and once the broker is back the outbox drains and every order is
 * PAID exactly once. Uses a broker of its own (KAFKA_PORT 19192) so other suites keep theirs.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { afterAll } from "vitest"
import { Duration, Effect } from "effect"
import { postJson, call } from "./support/TestApp.js"
import { ownBroker } from "./support/OwnBroker.js"
import { TestSystem } from "./support/TestSystem.js"
import { waitFor } from "./support/waitFor.js"

// this suite's broker is its own, started before the system connects to it and stopped when the suite is done
const own = ownBroker("19192")
const brokers = own.start()
afterAll(own.stop)
const broker = (command: "start" | "stop") => Effect.sync(() => void own[command]())

const body = { userId: "8f0e2d0a-3f5e-4a7b-9c1d-2e3f4a5b6c7d", amount: "10.00", currency: "EUR" }

describe("broker restart under load", () => {
  layer(TestSystem("broker_restart", { brokers }), { excludeTestServices: true, timeout: "120 seconds" })((it) => {
    it.effect("outbox drains after the broker comes back; every order PAID once", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const place = Effect.map(postJson("/orders", body), (r) => {
          assert.strictEqual(r.status, 201)
          return r.body.orderId as string
        })
        const before = yield* Effect.all(Array.from({ length: 10 }, () => place), { concurrency: 5 })
        yield* broker("stop")
        const during = yield* Effect.all(Array.from({ length: 20 }, () => place), { concurrency: 5 })
        yield* Effect.sleep(Duration.seconds(2))
        yield* broker("start")
        const orders = [...before, ...during]
        yield* waitFor(
          "all orders paid",
          Effect.forEach(orders, (id) => Effect.map(call("GET", `/orders/${id}`), (r) => r.body.state)),
          (states) => states.every((s) => s === "PAID"),
          Duration.seconds(90)
        )
        const [outbox] = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL`
        assert.strictEqual(outbox!.n, 0)
        const charges = yield* sql<{ order_id: string; n: number }>`
          SELECT order_id::text, count(*)::int AS n FROM provider_charges GROUP BY order_id`
        assert.strictEqual(charges.length, orders.length)
        assert.isTrue(charges.every((c) => c.n === 1))
      }), { timeout: 150_000 })
  })
})
