/**
 * The pipeline never stalls (docs/ARCHITECTURE.md "Payment worker", invariant 9), on the real broker and
 * database, on a topic of ONE partition so that every message below shares it with the orders that must still
 * settle:
 * - a corpus of hostile raw messages is parked, each with its exact bytes, and replayable byte for byte;
 *   orders posted after them all reach PAID;
 * - one order whose charges keep failing does not hold back the other orders of its partition;
 * - a crash of the consumer is logged, counted and recovered.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Metric, Ref } from "effect"
import { OrderActors } from "../src/actor/OrderActors.js"
import { CrashPoints } from "../src/CrashPoints.js"
import type { OrderId } from "../src/domain/Order.js"
import { EventStore } from "../src/eventstore/EventStore.js"
import { toMessage } from "../src/kafka/Envelope.js"
import { Kafka, type RawMessage } from "../src/kafka/Kafka.js"
import { consumerMetrics } from "../src/kafka/KeyedConsumer.js"
import { PaymentProcessor } from "../src/payment/PaymentProcess.js"
import { PaymentSimulator } from "../src/simulator/PaymentSimulator.js"
import { cmd, newId } from "./support/fixtures.js"
import { adminToken, call, postJson } from "./support/TestApp.js"
import { TestSystem } from "./support/TestSystem.js"
import { waitFor } from "./support/waitFor.js"

const body = { userId: "8f0e2d0a-3f5e-4a7b-9c1d-2e3f4a5b6c7d", amount: "42.50", currency: "EUR" }
const admin = { authorization: `Bearer ${adminToken}` }

const place = Effect.map(postJson("/orders", body), (r) => {
  assert.strictEqual(r.status, 201)
  return r.body.orderId as OrderId
})
const stateOf = (orderId: string) => Effect.map(call("GET", `/orders/${orderId}`), (r) => r.body.state as string)

interface Stored {
  readonly value_bytes: Uint8Array | null
  readonly key_bytes: Uint8Array | null
  readonly value: string
  readonly error: string
  readonly id: string
}
const parkedRows = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<Stored>`SELECT id::text AS id, value_bytes, key_bytes, value, error FROM dead_letters ORDER BY id`).pipe(Effect.orDie)

const same = (a: Uint8Array | null, b: Uint8Array | null) =>
  a === null || b === null ? a === b : Buffer.from(a).equals(Buffer.from(b))

const bytes = (text: string) => Buffer.from(text, "latin1")

describe("pipeline liveness", () => {
  layer(TestSystem("pipeline", { partitions: 1 }), { excludeTestServices: true, timeout: "120 seconds" })((it) => {
    it.effect("hostile raw messages are parked with their exact bytes and replayable; later orders settle", () =>
      Effect.gen(function*() {
        const kafka = yield* Kafka
        // a real envelope, to be sent under a key that is not its order id
        const actors = yield* OrderActors
        const foreign = newId<OrderId>()
        yield* actors.execute(cmd.place(foreign))
        const [placed] = yield* (yield* EventStore).readStream(foreign)
        const envelope = toMessage(placed!)
        const deep = "[".repeat(100_000) + "]".repeat(100_000)
        const corpus: Array<RawMessage & { readonly name: string }> = [
          { name: "NUL byte", key: bytes(newId()), value: Buffer.from([0x7b, 0x00, 0x7d]), headers: [] },
          { name: "invalid UTF-8", key: bytes(newId()), value: Buffer.from([0xff, 0xfe, 0xfd, 0x22]), headers: [] },
          { name: "nested 100,000 deep", key: bytes(newId()), value: bytes(deep), headers: [] },
          { name: "nested 5,000 deep (under the size cap)", key: bytes(newId()), value: bytes("[".repeat(5000) + "]".repeat(5000)), headers: [] },
          { name: "1 MB value", key: bytes(newId()), value: Buffer.alloc(1_000_000, 0x61), headers: [] },
          { name: "empty value", key: bytes(newId()), value: Buffer.alloc(0), headers: [] },
          { name: "tombstone", key: bytes(newId()), value: null, headers: [] },
          { name: "no key", key: null, value: bytes("{\"x\":1}"), headers: [] },
          { name: "non-UUID key", key: bytes("not-a-uuid"), value: bytes(envelope.value), headers: [] },
          { name: "escaped NUL in JSON", key: bytes(newId()), value: bytes("{\"eventId\":\"\\u0000\"}"), headers: [] },
          {
            name: "odd headers",
            key: bytes(newId()),
            value: bytes("{\"type\":\"OrderPlaced\"}"),
            headers: [["x\u0000y", Buffer.from([0x00, 0xff])], ["dup", "1"], ["dup", "2"], ["event-type", Buffer.from([0xc3])]]
          }
        ]
        const before = (yield* parkedRows).length
        // one by one: the 1 MB value alone fills a produce request
        for (const item of corpus) yield* kafka.sendRaw(kafka.topics.orderEvents, [item])
        const orders = yield* Effect.all(Array.from({ length: 5 }, () => place), { concurrency: 5 })
        const rows = yield* waitFor("every hostile message parked", parkedRows, (r) => r.length >= before + corpus.length)
        for (const item of corpus) {
          const row = rows.find((r) => same(r.value_bytes, item.value) && same(r.key_bytes, item.key))
          assert.isDefined(row, `${item.name} was not parked with its exact bytes`)
          assert.notInclude(row!.value, "\u0000", `${item.name}: the preview holds a NUL`)
        }
        const states = yield* waitFor(
          "the orders after the corpus settled",
          Effect.forEach(orders, stateOf),
          (s) => s.every((x) => x === "PAID")
        )
        assert.deepStrictEqual(states, orders.map(() => "PAID"))

        // replay sends the original bytes: the consumer parks the very same bytes again
        const nul = rows.find((r) => same(r.value_bytes, corpus[0]!.value))!
        const replayed = yield* call("POST", `/admin/dead-letters/${nul.id}/replay`, { headers: admin })
        assert.strictEqual(replayed.status, 200)
        assert.strictEqual(replayed.body.valueBase64, Buffer.from([0x7b, 0x00, 0x7d]).toString("base64"))
        yield* waitFor(
          "the replayed message parked again",
          parkedRows,
          (r) => r.filter((x) => same(x.value_bytes, corpus[0]!.value)).length === 2
        )
      }))

    it.effect("an order whose charges keep failing does not delay the other orders of its partition", () =>
      Effect.gen(function*() {
        const simulator = yield* PaymentSimulator
        const actors = yield* OrderActors
        const slow = newId<OrderId>()
        yield* Ref.update(simulator.settings, (s) => ({ ...s, failingOrders: [slow] }))
        yield* actors.execute(cmd.place(slow))
        yield* waitFor("the slow order's first attempt failed", stateOf(slow), (s) => s === "PAYMENT_PENDING")
        const others = yield* Effect.all(Array.from({ length: 20 }, () => place), { concurrency: 5 })
        const states = yield* waitFor(
          "the other orders settled",
          Effect.forEach(others, stateOf),
          (s) => s.every((x) => x === "PAID")
        )
        assert.deepStrictEqual(states, others.map(() => "PAID"))
        // ...while the slow one is still failing, its retries recorded in its own stream
        assert.strictEqual(yield* stateOf(slow), "PAYMENT_PENDING")
        const events = (yield* call("GET", `/orders/${slow}/events`)).body.map((e: any) => e.type)
        assert.include(events, "PaymentRetryScheduled")
        yield* Ref.update(simulator.settings, (s) => ({ ...s, failingOrders: [] }))
        assert.strictEqual(yield* waitFor("the slow order settled", stateOf(slow), (s) => s === "PAID"), "PAID")
      }))

    it.effect("a consumer crash is logged and recovered: later orders settle", () =>
      Effect.gen(function*() {
        const crash = yield* CrashPoints
        const { restarts } = consumerMetrics((yield* PaymentProcessor).consumer)
        const before = (yield* Metric.value(restarts)).count
        // the next batch the consumer takes throws inside kafkajs's eachBatch: kafkajs crashes the consumer
        yield* crash.arm("worker.consumerBatch")
        const first = yield* place
        yield* waitFor("the consumer restarted", Metric.value(restarts), (v) => v.count > before)
        assert.strictEqual(yield* crash.crashes("worker.consumerBatch"), 1)
        const second = yield* place
        for (const orderId of [first, second]) {
          assert.strictEqual(yield* waitFor("settled after the restart", stateOf(orderId), (s) => s === "PAID"), "PAID")
        }
      }))
  })
})

