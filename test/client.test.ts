/**
 * The typed client (src/client, package entry `orders-es/client`) against the api role on the real PostgreSQL:
 * every answer decodes to the spec's type, every refusal arrives as the endpoint's typed error, and the admin
 * token goes to the admin endpoints only.
 */
import { FetchHttpClient } from "@effect/platform"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { OrderActors } from "../src/actor/OrderActors.js"
import {
  DeadLetterNotFound,
  Forbidden,
  IdempotencyKeyMismatch,
  IllegalTransition,
  OrderId,
  OrderNotFound,
  OrdersClient,
  type OrdersClientOptions,
  Unauthorized,
  UserId,
  WebhookEndpointNotFound,
  WebhookRejected
} from "../src/client/index.js"
import type { PaymentId } from "../src/domain/Order.js"
import { cmd, newId } from "./support/fixtures.js"
import { adminToken, baseUrl, TestApp } from "./support/TestApp.js"

/** What the client put on the wire (path, Authorization), to see which requests carried the token. */
const sent: Array<readonly [string, string | null]> = []
const RecordingFetch = FetchHttpClient.layer.pipe(Layer.provide(Layer.succeed(FetchHttpClient.Fetch, (input, init) => {
  const request = new Request(input, init)
  sent.push([new URL(request.url).pathname, request.headers.get("authorization")])
  return fetch(request)
})))

const client = (options: Omit<OrdersClientOptions, "baseUrl"> = {}) =>
  Effect.flatMap(baseUrl, (url) => OrdersClient.make({ baseUrl: url, ...options })).pipe(Effect.provide(RecordingFetch))

const payload = (userId = UserId.make(newId())) => ({ userId, amount: "299.99", currency: "EUR" })

describe("typed client", () => {
  layer(TestApp("client"), { excludeTestServices: true })((it) => {
    it.effect("place, get, list and events decode to the spec's types", () =>
      Effect.gen(function*() {
        const api = yield* client()
        const user = UserId.make(newId())
        const placed = yield* api.orders.place({ payload: payload(user), headers: {}, urlParams: {} })
        assert.strictEqual(placed.state, "CREATED")
        assert.strictEqual(placed.amount, "299.99")
        assert.strictEqual(placed.userId, user)
        const orderId = OrderId.make(placed.orderId)
        assert.deepStrictEqual(yield* api.orders.get({ path: { orderId }, urlParams: {} }), placed)
        const page = yield* api.orders.list({ urlParams: { userId: user, limit: 10 } })
        assert.deepStrictEqual(page.items, [placed])
        assert.isNull(page.nextCursor)
        const events = yield* api.orders.events({ path: { orderId }, urlParams: {} })
        assert.deepStrictEqual(events.map((e) => e.type), ["OrderPlaced"])
      }))

    it.effect("Idempotency-Key through the typed header: a replay, then a 422 IdempotencyKeyMismatch", () =>
      Effect.gen(function*() {
        const api = yield* client()
        const headers = { "idempotency-key": `client-${newId()}` }
        const body = payload()
        const [first, response] = yield* api.orders.place({ payload: body, headers, urlParams: {}, withResponse: true })
        const again = yield* api.orders.place({ payload: body, headers, urlParams: {} })
        assert.strictEqual(response.status, 201)
        assert.deepStrictEqual(again, first)
        const mismatch = yield* api.orders.place({ payload: { ...body, amount: "1.00" }, headers, urlParams: {} }).pipe(Effect.flip)
        assert.strictEqual(mismatch._tag, "IdempotencyKeyMismatch")
        assert.instanceOf(mismatch, IdempotencyKeyMismatch)
      }))

    it.effect("an unknown order → 404 as OrderNotFound", () =>
      Effect.gen(function*() {
        const api = yield* client()
        const orderId = OrderId.make(newId())
        const error = yield* api.orders.get({ path: { orderId }, urlParams: {} }).pipe(Effect.flip)
        assert.strictEqual(error._tag, "OrderNotFound")
        assert.instanceOf(error, OrderNotFound)
        if (error._tag === "OrderNotFound") assert.strictEqual(error.orderId, orderId)
        const onCancel = yield* api.orders.cancel({ path: { orderId }, urlParams: {} }).pipe(Effect.flip)
        assert.strictEqual(onCancel._tag, "OrderNotFound")
      }))

    it.effect("cancel: CREATED → CANCELLED; a PAYMENT_PENDING order → 409 as IllegalTransition; watch ends with the terminal event", () =>
      Effect.gen(function*() {
        const api = yield* client()
        const cancellable = yield* api.orders.place({ payload: payload(), headers: {}, urlParams: {} })
        const cancelled = yield* api.orders.cancel({ path: { orderId: OrderId.make(cancellable.orderId) }, urlParams: {} })
        assert.strictEqual(cancelled.state, "CANCELLED")
        const stream = yield* api.orders.watch({ path: { orderId: OrderId.make(cancellable.orderId) }, urlParams: {}, headers: {} })
        assert.include(stream, "event: OrderCancelled")

        const pending = yield* api.orders.place({ payload: payload(), headers: {}, urlParams: {} })
        const orderId = OrderId.make(pending.orderId)
        yield* Effect.flatMap(OrderActors, (actors) => actors.execute(cmd.start(newId<PaymentId>(), orderId))).pipe(Effect.orDie)
        const refused = yield* api.orders.cancel({ path: { orderId }, urlParams: {} }).pipe(Effect.flip)
        assert.strictEqual(refused._tag, "IllegalTransition")
        assert.instanceOf(refused, IllegalTransition)
        if (refused._tag === "IllegalTransition") assert.strictEqual(refused.status, "PAYMENT_PENDING")
      }))

    it.effect("admin: no token → Unauthorized, a wrong one → Forbidden, the right one reaches the endpoint", () =>
      Effect.gen(function*() {
        const noToken = yield* (yield* client()).admin.listDeadLetters({ urlParams: {} }).pipe(Effect.flip)
        assert.instanceOf(noToken, Unauthorized)
        const wrong = yield* (yield* client({ adminToken: "not-the-token" })).admin.listDeadLetters({ urlParams: {} }).pipe(Effect.flip)
        assert.instanceOf(wrong, Forbidden)
        const api = yield* client({ adminToken })
        assert.deepStrictEqual(yield* api.admin.listDeadLetters({ urlParams: { status: "parked" } }), [])
        const missing = yield* api.admin.getDeadLetter({ path: { id: 987654 }, urlParams: {} }).pipe(Effect.flip)
        assert.strictEqual(missing._tag, "DeadLetterNotFound")
        assert.instanceOf(missing, DeadLetterNotFound)
        const status = yield* api.adminProjections.projectionsStatus({ urlParams: {} })
        assert.isFalse(status.orders.rebuild.running)
        // every admin group gets the token: the reconciliation too
        const report = yield* api.adminReconciliation.reconcile({ urlParams: {} })
        assert.deepStrictEqual(report.differences, [])
        assert.instanceOf(yield* (yield* client()).adminReconciliation.reconcile({ urlParams: {} }).pipe(Effect.flip), Unauthorized)
        // and the webhook endpoints: a registration with its secret, a 422 and a 404 as typed errors
        const created = yield* api.adminWebhooks.createWebhookEndpoint({
          payload: { url: "https://merchant.example/hooks", eventTypes: ["order.paid"] },
          urlParams: {}
        })
        const { secret, ...view } = created
        assert.match(secret, /^whsec_/)
        assert.deepStrictEqual(yield* api.adminWebhooks.getWebhookEndpoint({ path: { id: created.id }, urlParams: {} }), view)
        const refusedType = yield* api.adminWebhooks.createWebhookEndpoint({
          payload: { url: "https://merchant.example/hooks", eventTypes: ["order.shipped"] },
          urlParams: {}
        }).pipe(Effect.flip)
        assert.instanceOf(refusedType, WebhookRejected)
        const noEndpoint = yield* api.adminWebhooks.getWebhookEndpoint({ path: { id: newId() }, urlParams: {} }).pipe(Effect.flip)
        assert.instanceOf(noEndpoint, WebhookEndpointNotFound)
        assert.instanceOf(yield* (yield* client()).adminWebhooks.listWebhookEndpoints({ urlParams: {} }).pipe(Effect.flip), Unauthorized)
      }))

    it.effect("the admin token goes to the admin endpoints only", () =>
      Effect.gen(function*() {
        const api = yield* client({ adminToken })
        sent.length = 0
        yield* api.admin.listDeadLetters({ urlParams: {} })
        yield* api.orders.list({ urlParams: { limit: 1 } })
        yield* api.health.live({ urlParams: {} })
        assert.deepStrictEqual(sent, [
          ["/admin/dead-letters", `Bearer ${adminToken}`],
          ["/orders", null],
          ["/health/live", null]
        ])
      }))
  })
})
