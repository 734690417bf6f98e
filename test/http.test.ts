/**
 * The HTTP API against the real PostgreSQL: orders, Idempotency-Key, cancel, reads, health and docs. Bad
 * input (a clear 4xx, nothing written): http-bad-input.test.ts.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { OrderActors } from "../src/actor/OrderActors.js"
import type { OrderId, PaymentId } from "../src/domain/Order.js"
import { cmd, newId } from "./support/fixtures.js"
import { body, user } from "./support/http.js"
import { call, postJson, rowCounts, TestApp } from "./support/TestApp.js"

const place = (b: unknown = body, headers: Record<string, string> = {}) => postJson("/orders", b, headers)

/** Drive an order to PAYMENT_PENDING, then PAID or FAILED, the way the payment worker will. */
const settle = (orderId: OrderId, outcome: "PENDING" | "PAID" | "FAILED") =>
  Effect.gen(function*() {
    const actors = yield* OrderActors
    const p = newId<PaymentId>()
    yield* actors.execute(cmd.start(p, orderId))
    if (outcome === "PAID") yield* actors.execute(cmd.succeed(p, orderId))
    if (outcome === "FAILED") yield* actors.execute(cmd.fail(p, orderId))
  }).pipe(Effect.orDie)

describe("HTTP API", () => {
  layer(TestApp("http"), { excludeTestServices: true })((it) => {
    it.effect("POST /orders → 201 with the order; GET sees it; its stream holds OrderPlaced", () =>
      Effect.gen(function*() {
        const created = yield* place()
        assert.strictEqual(created.status, 201)
        assert.strictEqual(created.body.state, "CREATED")
        assert.strictEqual(created.body.version, 1)
        assert.strictEqual(created.body.amount, "299.99")
        assert.strictEqual(created.body.currency, "EUR")
        assert.strictEqual(created.body.userId, user)
        const got = yield* call("GET", `/orders/${created.body.orderId}`)
        assert.strictEqual(got.status, 200)
        assert.deepStrictEqual(got.body, created.body)
        const events = yield* call("GET", `/orders/${created.body.orderId}/events`)
        assert.strictEqual(events.status, 200)
        assert.deepStrictEqual(events.body.map((e: any) => [e.version, e.type]), [[1, "OrderPlaced"]])
        assert.strictEqual(events.body[0].data.amount.minor, "29999")
      }))

    it.effect("an uppercase userId is stored in canonical lower case", () =>
      Effect.gen(function*() {
        const created = yield* place({ ...body, userId: user.toUpperCase() })
        assert.strictEqual(created.status, 201)
        assert.strictEqual(created.body.userId, user)
      }))

    it.effect("Idempotency-Key: same key and body → the first response again, one order", () =>
      Effect.gen(function*() {
        const key = `key-${newId()}`
        const first = yield* place(body, { "idempotency-key": key })
        const before = yield* rowCounts
        const again = yield* place(body, { "idempotency-key": key })
        assert.strictEqual(first.status, 201)
        assert.strictEqual(again.status, 201)
        assert.deepStrictEqual(again.body, first.body)
        assert.strictEqual(again.headers["idempotent-replayed"], "true")
        assert.deepStrictEqual(yield* rowCounts, before)
      }))

    it.effect("Idempotency-Key: the same body written differently (key order, spacing) is the same request", () =>
      Effect.gen(function*() {
        const key = `key-${newId()}`
        const first = yield* place(body, { "idempotency-key": key })
        const again = yield* call("POST", "/orders", {
          body: `{ "currency": "EUR", "amount": "299.99", "userId": "${user.toUpperCase()}" }`,
          headers: { "content-type": "application/json", "idempotency-key": key }
        })
        assert.strictEqual(again.status, 201)
        assert.strictEqual(again.body.orderId, first.body.orderId)
      }))

    it.effect("Idempotency-Key: same key, different body → 422 and nothing written", () =>
      Effect.gen(function*() {
        const key = `key-${newId()}`
        yield* place(body, { "idempotency-key": key })
        const before = yield* rowCounts
        const other = yield* place({ ...body, amount: "1.00" }, { "idempotency-key": key })
        assert.strictEqual(other.status, 422)
        assert.strictEqual(other.body._tag, "IdempotencyKeyMismatch")
        assert.deepStrictEqual(yield* rowCounts, before)
      }))

    it.effect("Idempotency-Key: while the first request is in flight → 409", () =>
      Effect.gen(function*() {
        const key = `key-${newId()}`
        // the first request has claimed the key and not finished (a request in progress, or a crash within the lease)
        const first = yield* place(body, { "idempotency-key": key })
        const sql = yield* SqlClient.SqlClient
        yield* sql`UPDATE idempotency_keys SET status = 'in_flight', locked_at = now() WHERE key = ${key}`
        const second = yield* place(body, { "idempotency-key": key })
        assert.strictEqual(second.status, 409)
        assert.strictEqual(second.body._tag, "IdempotencyKeyInUse")
        // a claim whose lease expired (its process died) is taken over: the request runs again
        yield* sql`UPDATE idempotency_keys SET locked_at = now() - interval '1 hour' WHERE key = ${key}`
        const third = yield* place(body, { "idempotency-key": key })
        assert.strictEqual(third.status, 201)
        assert.notStrictEqual(third.body.orderId, first.body.orderId)
      }))

    it.effect("Idempotency-Key: concurrent requests with one key → one order; each reply is it or 409", () =>
      Effect.gen(function*() {
        const key = `key-${newId()}`
        const before = yield* rowCounts
        const replies = yield* Effect.all(Array.from({ length: 8 }, () => place(body, { "idempotency-key": key })), {
          concurrency: "unbounded"
        })
        const created = replies.filter((r) => r.status === 201)
        assert.isAtLeast(created.length, 1)
        assert.isTrue(replies.every((r) => r.status === 201 || r.status === 409), JSON.stringify(replies.map((r) => r.status)))
        assert.strictEqual(new Set(created.map((r) => r.body.orderId)).size, 1)
        assert.strictEqual((yield* rowCounts).orders, before.orders + 1)
      }))

    it.effect("cancel: CREATED → CANCELLED; again → still CANCELLED, no new event", () =>
      Effect.gen(function*() {
        const { body: order } = yield* place()
        const cancelled = yield* call("POST", `/orders/${order.orderId}/cancel`)
        assert.strictEqual(cancelled.status, 200)
        assert.strictEqual(cancelled.body.state, "CANCELLED")
        assert.strictEqual(cancelled.body.version, 2)
        const again = yield* call("POST", `/orders/${order.orderId}/cancel`)
        assert.strictEqual(again.status, 200)
        assert.strictEqual(again.body.version, 2)
        assert.strictEqual((yield* call("GET", `/orders/${order.orderId}/events`)).body.length, 2)
      }))

    for (const outcome of ["PAID", "FAILED", "PENDING"] as const) {
      it.effect(`cancel of a ${outcome === "PENDING" ? "PAYMENT_PENDING" : outcome} order → 409, nothing written`, () =>
        Effect.gen(function*() {
          const { body: order } = yield* place()
          yield* settle(order.orderId, outcome)
          const before = yield* rowCounts
          const refused = yield* call("POST", `/orders/${order.orderId}/cancel`)
          assert.strictEqual(refused.status, 409)
          assert.strictEqual(refused.body._tag, "IllegalTransition")
          assert.deepStrictEqual(yield* rowCounts, before)
        }))
    }

    it.effect("unknown order → 404 on GET, events and cancel; malformed id → 400", () =>
      Effect.gen(function*() {
        const unknown = newId()
        assert.strictEqual((yield* call("GET", `/orders/${unknown}`)).status, 404)
        assert.strictEqual((yield* call("GET", `/orders/${unknown}/events`)).status, 404)
        const before = yield* rowCounts
        assert.strictEqual((yield* call("POST", `/orders/${unknown}/cancel`)).status, 404)
        assert.strictEqual((yield* call("GET", "/orders/not-a-uuid")).status, 400)
        assert.strictEqual((yield* call("POST", "/orders/not-a-uuid/cancel")).status, 400)
        assert.strictEqual((yield* call("GET", "/nowhere")).status, 404)
        assert.deepStrictEqual(yield* rowCounts, before)
      }))

    it.effect("GET /orders filters by state and userId and pages with a cursor, newest first", () =>
      Effect.gen(function*() {
        const someone = newId()
        const ids: Array<string> = []
        for (let i = 0; i < 5; i++) ids.push((yield* place({ ...body, userId: someone })).body.orderId)
        yield* call("POST", `/orders/${ids[1]}/cancel`)
        const page1 = yield* call("GET", `/orders?userId=${someone}&limit=2`)
        assert.strictEqual(page1.status, 200)
        assert.deepStrictEqual(page1.body.items.map((o: any) => o.orderId), [ids[4], ids[3]])
        const page2 = yield* call("GET", `/orders?userId=${someone}&limit=2&cursor=${page1.body.nextCursor}`)
        assert.deepStrictEqual(page2.body.items.map((o: any) => o.orderId), [ids[2], ids[1]])
        const page3 = yield* call("GET", `/orders?userId=${someone}&limit=2&cursor=${page2.body.nextCursor}`)
        assert.deepStrictEqual(page3.body.items.map((o: any) => o.orderId), [ids[0]])
        assert.isNull(page3.body.nextCursor)
        const cancelled = yield* call("GET", `/orders?userId=${someone}&state=CANCELLED`)
        assert.deepStrictEqual(cancelled.body.items.map((o: any) => o.orderId), [ids[1]])
        for (const bad of ["state=SHIPPED", "limit=0", "limit=101", "limit=abc", "userId=nope", "cursor=zzz"]) {
          assert.strictEqual((yield* call("GET", `/orders?${bad}`)).status, 400, bad)
        }
      }))

    it.effect("health: live, and ready once the database answers with migrations applied", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual((yield* call("GET", "/health/live")).body, { status: "ok" })
        const ready = yield* call("GET", "/health/ready")
        assert.strictEqual(ready.status, 200)
        // the api's own dependency, the database, decides; the broker is reported (the api needs it for /metrics
        // only); a worker's consumer would be listed too
        assert.strictEqual(ready.body.status, "ready")
        assert.deepStrictEqual(Object.keys(ready.body.checks).sort(), ["broker", "database"])
        assert.include(ready.body.checks.database, { ok: true, required: true })
        assert.include(ready.body.checks.broker, { ok: true, required: false })
      }))

    it.effect("OpenAPI JSON and Swagger UI at /docs", () =>
      Effect.gen(function*() {
        const spec = yield* call("GET", "/docs/openapi.json")
        assert.strictEqual(spec.status, 200)
        assert.includeMembers(Object.keys(spec.body.paths), ["/orders", "/orders/{orderId}", "/orders/{orderId}/cancel"])
        const ui = yield* call("GET", "/docs")
        assert.strictEqual(ui.status, 200)
        assert.include(String(ui.body), "swagger")
      }))
  })
})
