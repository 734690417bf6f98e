/**
 * The notifier's handling of one message on the real PostgreSQL, below Kafka (issue 20): the body of each
 * event is the order as the log says it was right after it — folded onto the order it kept from the event
 * before (no stream read) or read from the log when it has none — and a message the log does not hold exactly
 * is never delivered as it came: a forged copy of a real event is delivered as the log has it, an event the log
 * does not have is parked.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { OrderActors } from "../src/actor/OrderActors.js"
import { DeadLetters, type Parked } from "../src/deadletter/DeadLetters.js"
import { EventStore } from "../src/eventstore/EventStore.js"
import type { IncomingMessage, OutgoingMessage } from "../src/kafka/Kafka.js"
import { toMessage } from "../src/kafka/Envelope.js"
import { PgStores } from "../src/Stores.js"
import { makeNotifierHandler } from "../src/webhooks/Notifier.js"
import { cmd, newOrderId, p1 } from "./support/fixtures.js"
import { onTestDatabase } from "./support/TestDatabase.js"

const parked: Array<Parked> = []
const reads: Array<string> = []

/** The store, counting the streams read (the notifier should read none for events it folds itself). */
const CountingStore = Layer.effect(
  EventStore,
  Effect.map(EventStore, (store) => EventStore.of({
    ...store,
    readStream: (id) => Effect.zipRight(Effect.sync(() => reads.push(id)), store.readStream(id))
  }))
)

const Deps = Layer.mergeAll(
  OrderActors.Default,
  Layer.succeed(DeadLetters, { park: (p: Parked) => Effect.sync(() => void parked.push(p)) } as unknown as DeadLetters)
).pipe(Layer.provideMerge(PgStores))

const asIncoming = (m: OutgoingMessage, offset: number): IncomingMessage => ({
  key: Buffer.from(m.key),
  value: Buffer.from(m.value),
  headers: Object.entries(m.headers).map(([k, v]) => [k, Buffer.from(v)] as const),
  topic: "orders.events",
  partition: 0,
  offset: String(offset)
})

describe("the notifier's handler", () => {
  layer(onTestDatabase("notifier-handler", Deps), { excludeTestServices: true })((it) => {
    const endpoint = Effect.flatMap(SqlClient.SqlClient, (sql) =>
      Effect.gen(function*() {
        yield* sql`UPDATE webhook_endpoints SET status = 'disabled'`
        const [row] = yield* sql<{ id: string }>`
          INSERT INTO webhook_endpoints (id, url, secret, created_at) VALUES (gen_random_uuid(), 'https://hooks.example.com/', 'whsec_AAAA', now() - interval '1 hour')
          RETURNING id`
        return row!.id
      })).pipe(Effect.orDie)

    const bodies = (endpointId: string, orderId: string) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<{ version: number; body: string }>`
          SELECT version, body FROM webhook_deliveries WHERE endpoint_id = ${endpointId} AND order_id = ${orderId} ORDER BY version`).pipe(
        Effect.map((rows) => rows.map((r) => ({ version: r.version, body: JSON.parse(r.body) }))),
        Effect.orDie
      )

    /** An order placed, paid; its log's events as the relay publishes them. */
    const paidOrder = Effect.gen(function*() {
      const actors = yield* OrderActors
      const id = newOrderId()
      for (const c of [cmd.place(id), cmd.start(p1, id), cmd.succeed(p1, id)]) yield* actors.execute(c)
      const log = yield* (yield* EventStore).readStream(id)
      return { id, log, messages: log.map((r, k) => asIncoming(toMessage(r), k)) }
    })

    it.scoped("each body is the order after its event; folded on, the stream is read only for the first event seen past version 1", () =>
      Effect.gen(function*() {
        const ep = yield* endpoint
        const handle = yield* makeNotifierHandler("nh-1").pipe(Effect.provide(CountingStore))
        const a = yield* paidOrder
        reads.length = 0
        for (const m of a.messages) yield* handle(m)
        assert.deepStrictEqual(reads, [], "from version 1 on, every event folds onto the one before")
        const got = yield* bodies(ep, a.id)
        assert.deepStrictEqual(got.map((b) => [b.version, b.body.type, b.body.data.order.state, b.body.data.order.version]), [
          [1, "order.placed", "CREATED", 1],
          [2, "order.payment_pending", "PAYMENT_PENDING", 2],
          [3, "order.paid", "PAID", 3]
        ])
        // an order first seen at version 3 (another notifier had the rest): its log is read once, the body alike
        const b = yield* paidOrder
        const fresh = yield* makeNotifierHandler("nh-2").pipe(Effect.provide(CountingStore))
        reads.length = 0
        yield* fresh(b.messages[2]!)
        assert.deepStrictEqual(reads, [b.id])
        const [paid] = yield* bodies(ep, b.id)
        assert.deepStrictEqual([paid!.version, paid!.body.data.order.state, paid!.body.timestamp], [3, "PAID", b.log[2]!.recordedAt.toISOString()])
      }))

    it.scoped("a forged copy of a real event is delivered as the log has it; an event the log does not hold is parked", () =>
      Effect.gen(function*() {
        const ep = yield* endpoint
        const handle = yield* makeNotifierHandler("nh-3")
        const a = yield* paidOrder
        yield* handle(a.messages[0]!)
        yield* handle(a.messages[1]!)
        // version 3 with the real event id, claiming the order FAILED: the log says PAID
        const real = JSON.parse(Buffer.from(a.messages[2]!.value!).toString()) as Record<string, any>
        const forged = { ...real, type: "OrderFailed", data: { ...real.data, _tag: "OrderFailed", reason: "forged" } }
        parked.length = 0
        yield* handle({ ...a.messages[2]!, value: Buffer.from(JSON.stringify(forged)), headers: [] })
        const got = yield* bodies(ep, a.id)
        assert.deepStrictEqual(got.map((b) => [b.version, b.body.type, b.body.data.order.state]), [
          [1, "order.placed", "CREATED"],
          [2, "order.payment_pending", "PAYMENT_PENDING"],
          [3, "order.paid", "PAID"]
        ])
        assert.deepStrictEqual(parked, [])
        // an event id the log does not have, at the next version: parked, nothing written
        const invented = { ...real, version: 4, eventId: "6f1c2a57-9d7e-4c1b-8a3e-2b9f0d4e5a61" }
        yield* handle({ ...a.messages[2]!, value: Buffer.from(JSON.stringify(invented)), headers: [] })
        assert.strictEqual(parked.length, 1)
        assert.match(parked[0]!.error, /is not in the log/)
        assert.strictEqual((yield* bodies(ep, a.id)).length, 3)
      }))
  })
})
