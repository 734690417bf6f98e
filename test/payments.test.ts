/**
 * End to end on the real PostgreSQL and the real Kafka broker: POST /orders → outbox → relay → Kafka →
 * payment worker → provider simulator → PAID / FAILED. Duplicates, transient errors, outage and breaker,
 * dead letters visible to operators, the sweeper, what a plain consumer sees, the projection rebuild and
 * /metrics. Crashes at the relay's and the worker's named points: payments-crash.test.ts; retries
 * exhausted, parking and replay: payments-dlq.test.ts.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Metric } from "effect"
import { Kafka as KafkaJs, logLevel } from "kafkajs"
import { OrderActors } from "../src/actor/OrderActors.js"
import type { OrderId, PaymentId } from "../src/domain/Order.js"
import { EventStore } from "../src/eventstore/EventStore.js"
import { toMessage } from "../src/kafka/Envelope.js"
import { Kafka } from "../src/kafka/Kafka.js"
import { breakerOpened } from "../src/payment/CircuitBreaker.js"
import { duplicatesSkipped, paymentRetries } from "../src/payment/PaymentMetrics.js"
import { cmd, newId } from "./support/fixtures.js"
import { admin, assertInvariants, charges, deadLetterCount, place, provider, settle, stateOf, test } from "./support/payments.js"
import { call } from "./support/TestApp.js"
import { kafkaBrokers } from "./support/TestKafka.js"
import { TestSystem } from "./support/TestSystem.js"
import { waitFor } from "./support/waitFor.js"

describe("payments end to end", () => {
  layer(TestSystem("payments"), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("POST → PAID through Kafka, one charge", () =>
      test(Effect.gen(function*() {
        const orderId = yield* place
        assert.strictEqual(yield* settle(orderId), "PAID")
        assert.strictEqual(yield* charges(orderId), 1)
        const events = (yield* call("GET", `/orders/${orderId}/events`)).body.map((e: any) => e.type)
        assert.deepStrictEqual(events, ["OrderPlaced", "PaymentRequested", "OrderPaid"])
        yield* assertInvariants(orderId)
      })))

    it.effect("a declined card → FAILED", () =>
      test(Effect.gen(function*() {
        yield* provider({ declineRate: 1 })
        const orderId = yield* place
        const state = yield* settle(orderId)
        yield* provider({ declineRate: 0 })
        assert.strictEqual(state, "FAILED")
        assert.strictEqual(yield* charges(orderId), 1)
        yield* assertInvariants(orderId)
      })))

    it.effect("the same Kafka message published again → DUPLICATE_EVENT, no second charge", () =>
      test(Effect.gen(function*() {
        const orderId = yield* place
        yield* settle(orderId)
        const before = (yield* Metric.value(duplicatesSkipped)).count
        const kafka = yield* Kafka
        const [placed] = yield* (yield* EventStore).readStream(orderId)
        yield* kafka.send(kafka.topics.orderEvents, [toMessage(placed!), toMessage(placed!)])
        yield* waitFor("duplicates skipped", Metric.value(duplicatesSkipped), (v) => v.count >= before + 2)
        assert.strictEqual(yield* charges(orderId), 1)
        assert.strictEqual((yield* call("GET", `/orders/${orderId}/events`)).body.length, 3)
      })))

    it.effect("transient provider errors are retried, then PAID, nothing parked", () =>
      test(Effect.gen(function*() {
        const parked = yield* deadLetterCount
        const retriesBefore = (yield* Metric.value(paymentRetries)).count
        yield* provider({ transientErrorRate: 1 })
        const orders = yield* Effect.all(Array.from({ length: 3 }, () => place), { concurrency: 3 })
        yield* waitFor("retries", Metric.value(paymentRetries), (v) => v.count >= retriesBefore + 2)
        yield* provider({ transientErrorRate: 0 })
        const states = yield* Effect.forEach(orders, settle)
        assert.deepStrictEqual(states, orders.map(() => "PAID"))
        for (const o of orders) assert.strictEqual(yield* charges(o), 1)
        assert.strictEqual(yield* deadLetterCount, parked)
      })))

    it.effect("provider outage: the breaker opens, orders wait; provider back → all PAID, none parked", () =>
      test(Effect.gen(function*() {
        const parked = yield* deadLetterCount
        yield* provider({ outage: true })
        const orders = yield* Effect.all(Array.from({ length: 5 }, () => place), { concurrency: 5 })
        // the first orders wait in PAYMENT_PENDING behind the open breaker; the rest wait unconsumed (CREATED)
        yield* waitFor("payments waiting", Effect.forEach(orders, stateOf), (s) => s.includes("PAYMENT_PENDING"))
        yield* Effect.sleep("1500 millis") // several cool-downs and failed probes
        const waiting = yield* Effect.forEach(orders, stateOf)
        assert.isTrue(waiting.every((x) => x === "PAYMENT_PENDING" || x === "CREATED"), JSON.stringify(waiting))
        assert.isAtLeast(yield* Effect.map(Metric.value(breakerOpened), (v) => v.count), 1)
        yield* provider({ outage: false })
        const states = yield* Effect.forEach(orders, settle)
        assert.deepStrictEqual(states, orders.map(() => "PAID"))
        for (const o of orders) assert.strictEqual(yield* charges(o), 1)
        assert.strictEqual(yield* deadLetterCount, parked)
      })))

    it.effect("an undecodable message goes straight to dead letters, visible to operators", () =>
      test(Effect.gen(function*() {
        const kafka = yield* Kafka
        const before = yield* deadLetterCount
        yield* kafka.send(kafka.topics.orderEvents, [{ key: "poison", value: "{not an envelope", headers: {} }])
        yield* waitFor("parked", deadLetterCount, (n) => n === before + 1)
        const list = yield* call("GET", "/admin/dead-letters?status=parked", { headers: admin })
        assert.strictEqual(list.status, 200)
        const poison = list.body.find((d: any) => d.key === "poison")
        assert.strictEqual(poison.attempts, 0)
        assert.match(poison.error, /not JSON/)
        const discarded = yield* call("POST", `/admin/dead-letters/${poison.id}/discard`, { headers: admin })
        assert.strictEqual(discarded.body.status, "discarded")
        assert.strictEqual((yield* call("POST", `/admin/dead-letters/${poison.id}/discard`, { headers: admin })).status, 409)
      })))

    it.effect("admin API: 401 without a token, 403 with a wrong one, 404 for an unknown dead letter", () =>
      test(Effect.gen(function*() {
        assert.strictEqual((yield* call("GET", "/admin/dead-letters")).status, 401)
        assert.strictEqual((yield* call("GET", "/admin/dead-letters", { headers: { authorization: "Bearer nope" } })).status, 403)
        assert.strictEqual((yield* call("GET", "/admin/dead-letters/999999", { headers: admin })).status, 404)
        assert.strictEqual((yield* call("POST", "/admin/dead-letters/999999/replay", { headers: admin })).status, 404)
        assert.strictEqual((yield* call("GET", "/admin/dead-letters/abc", { headers: admin })).status, 400)
      })))

    it.effect("the sweeper re-drives an order stuck in PAYMENT_PENDING", () =>
      test(Effect.gen(function*() {
        // a payment started whose message will never come (as after a parked message): only the sweeper finishes it
        const actors = yield* OrderActors
        const orderId = newId<OrderId>()
        yield* actors.execute(cmd.place(orderId))
        yield* actors.execute(cmd.start(newId<PaymentId>(), orderId))
        const sql = yield* SqlClient.SqlClient
        // the sweeper of this system takes orders pending for 10 minutes: age this one
        yield* sql`UPDATE orders SET updated_at = now() - interval '1 hour' WHERE order_id = ${orderId}`
        assert.strictEqual(yield* settle(orderId), "PAID")
        assert.strictEqual(yield* charges(orderId), 1)
      })))

    it.effect("a plain consumer sees key = order id, a JSON value and the headers", () =>
      test(Effect.gen(function*() {
        const kafka = yield* Kafka
        const orderId = yield* place
        yield* settle(orderId)
        const client = new KafkaJs({ brokers: kafkaBrokers().split(","), logLevel: logLevel.NOTHING })
        const consumer = client.consumer({ groupId: `plain-${newId()}`, maxWaitTimeInMs: 100 })
        const seen = yield* Effect.acquireUseRelease(
          Effect.promise(async () => {
            await consumer.connect()
            await consumer.subscribe({ topic: kafka.topics.orderEvents, fromBeginning: true })
            return consumer
          }),
          (c) =>
            Effect.async<{ key: string; value: any; headers: Record<string, string> }>((resume) => {
              void c.run({
                eachMessage: async ({ message }) => {
                  if (message.key?.toString() !== orderId) return
                  const headers = Object.fromEntries(
                    Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)])
                  )
                  resume(Effect.succeed({ key: message.key.toString(), value: JSON.parse(message.value!.toString()), headers }))
                }
              })
            }),
          (c) => Effect.promise(() => c.disconnect())
        )
        assert.strictEqual(seen.key, orderId)
        assert.strictEqual(seen.value.orderId, orderId)
        assert.strictEqual(seen.value.type, "OrderPlaced")
        assert.strictEqual(seen.value.version, 1)
        assert.strictEqual(seen.headers["event-type"], "OrderPlaced")
        assert.strictEqual(seen.headers["event-id"], seen.value.eventId)
        assert.strictEqual(seen.headers["schema-version"], "1")
        assert.strictEqual(seen.headers["content-type"], "application/json")
      })))

    it.effect("admin: rebuild the orders projection over HTTP; the stats projection follows the log", () =>
      test(Effect.gen(function*() {
        const orderId = yield* place
        yield* settle(orderId)
        assert.strictEqual((yield* call("POST", "/admin/projections/orders/rebuild")).status, 401)
        const started = yield* call("POST", "/admin/projections/orders/rebuild", { headers: admin })
        assert.strictEqual(started.status, 202)
        const status = yield* waitFor(
          "rebuild done",
          Effect.map(call("GET", "/admin/projections", { headers: admin }), (r) => r.body),
          (b) => b.orders.rebuild.running === false && b.orders.rebuild.lastResult !== null
        )
        assert.strictEqual(status.orders.rebuild.lastResult.orders, status.orders.rows)
        assert.strictEqual((yield* call("GET", `/orders/${orderId}`)).body.state, "PAID")
        const sql = yield* SqlClient.SqlClient
        const counts = sql<{ status: string; n: number }>`SELECT status, count(*)::int AS n FROM orders GROUP BY status`.pipe(
          Effect.map((rows) => Object.fromEntries(rows.map((r) => [r.status, r.n]))),
          Effect.orDie
        )
        yield* waitFor(
          "stats caught up",
          Effect.all([Effect.map(call("GET", "/stats/orders-by-state"), (r) => r.body), counts]),
          ([stats, live]) => Object.entries(live).every(([k, v]) => stats[k] === v)
        )
        const revenue = yield* call("GET", "/stats/revenue")
        assert.isTrue(revenue.body.some((r: any) => r.currency === "EUR" && r.paidOrders > 0))
      })))

    it.effect("GET /metrics speaks Prometheus text", () =>
      test(Effect.gen(function*() {
        const metrics = yield* call("GET", "/metrics")
        assert.strictEqual(metrics.status, 200)
        const text = String(metrics.body)
        for (const name of [
          "worker_events_processed_total", "worker_duplicates_skipped_total", "payments_succeeded_total",
          "payments_failed_total", "payment_retries_total", "dead_letters_parked_total", "relay_lag_seconds",
          "consumer_lag_messages", "http_request_duration_seconds_bucket", "projection_lag_events"
        ]) {
          assert.include(text, name)
        }
      })))
  })
})
