/**
 * Refunds end to end on the real PostgreSQL and the real Kafka broker (issue 21): POST /orders/:id/refunds →
 * RefundRequested → outbox → Kafka → payment worker → provider simulator's /refunds → RefundSucceeded /
 * RefundFailed. Partial refunds, Idempotency-Key replays, refusals at the edge, a race of two writers to exceed
 * the charge, a provider outage (durable retries), the watch of a refund, the stats.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { request as httpRequest } from "node:http"
import { OrderActors } from "../src/actor/OrderActors.js"
import { eur } from "./support/fixtures.js"
import { type OrderId, type RefundId, RequestRefund } from "../src/domain/Order.js"
import { uuidv4 } from "../src/Ids.js"
import { rebuildOrders, verifyOrders } from "../src/projection/Rebuild.js"
import { assertInvariants, place, provider, settle, stateOf, test } from "./support/payments.js"
import { baseUrl, call, postJson } from "./support/TestApp.js"
import { TestSystem } from "./support/TestSystem.js"
import { waitFor } from "./support/waitFor.js"

const refund = (orderId: string, body: unknown, key?: string) =>
  postJson(`/orders/${orderId}/refunds`, body, key === undefined ? {} : { "idempotency-key": key })

const refundOf = (orderId: string, refundId: string) =>
  Effect.map(call("GET", `/orders/${orderId}/refunds/${refundId}`), (r) => r.body)

const settledRefund = (orderId: string, refundId: string) =>
  waitFor(`refund ${refundId} settled`, refundOf(orderId, refundId), (r) => r.status === "succeeded" || r.status === "failed")

/** The provider's refunds of an order: (amount, outcome). */
const providerRefunds = (orderId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ idempotency_key: string; amount_minor: string; outcome: string }>`
      SELECT idempotency_key, amount_minor::text AS amount_minor, outcome FROM provider_refunds WHERE order_id = ${orderId}
      ORDER BY created_at`).pipe(Effect.orDie)

const paidOrder = Effect.gen(function*() {
  const orderId = yield* place
  assert.strictEqual(yield* settle(orderId), "PAID")
  return orderId
})

describe("refunds end to end", () => {
  layer(TestSystem("refunds"), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("partial + partial = REFUNDED: one provider refund each, the order's view and list follow", () =>
      test(Effect.gen(function*() {
        const orderId = yield* paidOrder // 42.50 EUR
        const first = yield* refund(orderId, { amount: "20.00", reason: "one item returned" }, "ret-1")
        assert.strictEqual(first.status, 202)
        assert.deepInclude(first.body, { orderId, amount: "20.00", currency: "EUR", status: "pending", reason: "one item returned" })
        assert.strictEqual((yield* settledRefund(orderId, first.body.refundId)).status, "succeeded")
        const partial = (yield* call("GET", `/orders/${orderId}`)).body
        assert.deepInclude(partial, { state: "PARTIALLY_REFUNDED", refundedAmount: "20.00" })
        const second = yield* refund(orderId, { amount: "22.50" }, "ret-2")
        assert.strictEqual(second.status, 202)
        yield* settledRefund(orderId, second.body.refundId)
        assert.deepInclude((yield* call("GET", `/orders/${orderId}`)).body, { state: "REFUNDED", refundedAmount: "42.50" })
        const list = (yield* call("GET", `/orders/${orderId}/refunds`)).body.items
        assert.deepStrictEqual(list.map((r: any) => [r.amount, r.status]), [["20.00", "succeeded"], ["22.50", "succeeded"]])
        const atProvider = yield* providerRefunds(orderId)
        assert.deepStrictEqual(atProvider.map((r) => [r.idempotency_key, r.amount_minor, r.outcome]), [
          [first.body.refundId, "2000", "succeeded"],
          [second.body.refundId, "2250", "succeeded"]
        ])
        // nothing is left: a further refund is a 409
        assert.strictEqual((yield* refund(orderId, { amount: "0.01" })).status, 409)
        const events = (yield* call("GET", `/orders/${orderId}/events`)).body.map((e: any) => e.type)
        assert.deepStrictEqual(events.slice(3), ["RefundRequested", "RefundSucceeded", "RefundRequested", "RefundSucceeded"])
        yield* assertInvariants(orderId)
        // the projection's refunds are the fold's, live and rebuilt
        const before = (yield* call("GET", `/orders/${orderId}/refunds`)).body
        assert.deepStrictEqual(yield* verifyOrders, [])
        yield* rebuildOrders()
        assert.deepStrictEqual(yield* verifyOrders, [])
        assert.deepStrictEqual((yield* call("GET", `/orders/${orderId}/refunds`)).body, before)
        assert.deepInclude((yield* call("GET", `/orders/${orderId}`)).body, { state: "REFUNDED", refundedAmount: "42.50" })
      })))

    it.effect("the same Idempotency-Key twice → the first answer, one refund; with another body → 422", () =>
      test(Effect.gen(function*() {
        const orderId = yield* paidOrder
        const first = yield* refund(orderId, { amount: "10.00" }, "same-key")
        const again = yield* refund(orderId, { amount: "10.00" }, "same-key")
        assert.strictEqual(again.status, 202)
        assert.strictEqual(again.headers["idempotent-replayed"], "true")
        assert.deepStrictEqual(again.body, first.body)
        const other = yield* refund(orderId, { amount: "11.00" }, "same-key")
        assert.strictEqual(other.status, 422)
        assert.strictEqual(other.body._tag, "IdempotencyKeyMismatch")
        yield* settledRefund(orderId, first.body.refundId)
        // replayed after it settled: still the first answer
        assert.deepStrictEqual((yield* refund(orderId, { amount: "10.00" }, "same-key")).body, first.body)
        assert.strictEqual((yield* providerRefunds(orderId)).length, 1)
        // the same key on another order is another refund
        const otherOrder = yield* paidOrder
        const elsewhere = yield* refund(otherOrder, { amount: "10.00" }, "same-key")
        assert.strictEqual(elsewhere.status, 202)
        assert.notStrictEqual(elsewhere.body.refundId, first.body.refundId)
      })))

    it.effect("refused at the edge: above what is left (pending counted), wrong currency, not paid, bad input — nothing written", () =>
      test(Effect.gen(function*() {
        const orderId = yield* paidOrder
        const before = (yield* call("GET", `/orders/${orderId}/events`)).body.length
        const over = yield* refund(orderId, { amount: "42.51" })
        assert.strictEqual(over.status, 422)
        assert.deepInclude(over.body, { _tag: "RefundRefused", code: "amount" })
        assert.strictEqual((yield* refund(orderId, { amount: "1.00", currency: "USD" })).body.code, "currency")
        for (const body of [{ amount: "0" }, { amount: "-1" }, { amount: "1.001" }, { amount: "1.00", currency: "XXX" }]) {
          assert.strictEqual((yield* refund(orderId, body)).status, 422, JSON.stringify(body))
        }
        // (a NUL or a lone surrogate in the reason: what jsonb cannot store is a 400, not a 500 at the append)
        for (const body of [{}, { amount: 5 }, { amount: "1.00", extra: true }, { amount: "1.00", reason: "x".repeat(501) },
          { amount: "1.00", reason: "a\u0000b" }, { amount: "1.00", reason: "\ud800" }, { amount: "1.00", reason: "x\udc00y" }]) {
          assert.strictEqual((yield* refund(orderId, body)).status, 400, JSON.stringify(body))
        }
        const bad = yield* call("POST", `/orders/${orderId}/refunds`, { body: "{", headers: { "content-type": "application/json" } })
        assert.strictEqual(bad.status, 400)
        assert.strictEqual((yield* call("GET", `/orders/${orderId}/events`)).body.length, before)
        assert.strictEqual((yield* refund(uuidv4(), { amount: "1.00" })).status, 404)
        assert.strictEqual((yield* call("GET", `/orders/${orderId}/refunds/${uuidv4()}`)).status, 404)
        assert.strictEqual((yield* call("GET", `/orders/${orderId}/refunds/not-a-uuid`)).status, 400)
        // pending refunds count: 40.00 pending leaves 2.50
        yield* provider({ outage: true })
        assert.strictEqual((yield* refund(orderId, { amount: "40.00" })).status, 202)
        assert.strictEqual((yield* refund(orderId, { amount: "2.51" })).status, 422)
        assert.strictEqual((yield* refund(orderId, { amount: "2.50" })).status, 202)
        yield* provider({ outage: false })
        // an order that is not paid (declined) cannot be refunded
        yield* provider({ declineRate: 1 })
        const declined = yield* place
        assert.strictEqual(yield* settle(declined), "FAILED")
        yield* provider({ declineRate: 0 })
        const notPaid = yield* refund(declined, { amount: "1.00" })
        assert.strictEqual(notPaid.status, 409)
        assert.strictEqual(notPaid.body._tag, "IllegalTransition")
      })))

    it.effect("two writers racing to exceed the charge (two actor caches, as two api processes): one refused", () =>
      test(Effect.gen(function*() {
        const orderId = yield* paidOrder
        const elsewhere = Effect.gen(function*() {
          const actors = yield* OrderActors
          yield* actors.load(orderId as OrderId)
          return yield* actors.execute(new RequestRefund({
            commandId: uuidv4() as RequestRefund["commandId"],
            orderId: orderId as OrderId,
            refundId: uuidv4() as RefundId,
            amount: eur("30.00"),
            reason: null,
            at: new Date()
          })).pipe(Effect.either)
        }).pipe(Effect.provide(OrderActors.Default))
        const [viaHttp, other] = yield* Effect.all([refund(orderId, { amount: "30.00" }), elsewhere], { concurrency: 2 })
        const accepted = [viaHttp.status === 202, other._tag === "Right"].filter(Boolean).length
        assert.strictEqual(accepted, 1, JSON.stringify({ http: viaHttp.body, other: other._tag }))
        if (viaHttp.status !== 202) assert.deepInclude(viaHttp.body, { _tag: "RefundRefused", code: "amount" })
        else assert.strictEqual(other._tag === "Left" && other.left._tag, "RefundRefused")
      })))

    it.effect("a refund during a provider outage is retried durably and settles after; a watch stays open until then", () =>
      test(Effect.gen(function*() {
        const orderId = yield* paidOrder
        yield* provider({ outage: true })
        const accepted = yield* refund(orderId, { amount: "5.00" })
        const version = (yield* call("GET", `/orders/${orderId}`)).body.version as number
        const watched = yield* watchText(orderId, version - 1)
        const retried = yield* waitFor("a durable refund retry", Effect.map(call("GET", `/orders/${orderId}/events`), (r) => r.body.map((e: any) => e.type)), (types) => types.includes("RefundRetryScheduled"))
        assert.isTrue(retried.includes("RefundRetryScheduled"))
        assert.isFalse(watched.ended(), "the watch of a paid order with a refund pending ended early")
        assert.strictEqual((yield* refundOf(orderId, accepted.body.refundId)).status, "pending")
        assert.isAtLeast((yield* refundOf(orderId, accepted.body.refundId)).attempts, 1)
        yield* provider({ outage: false })
        assert.strictEqual((yield* settledRefund(orderId, accepted.body.refundId)).status, "succeeded")
        const text = yield* watched.text
        assert.match(text, /event: RefundSucceeded/)
        assert.strictEqual(yield* stateOf(orderId), "PARTIALLY_REFUNDED")
        assert.strictEqual((yield* providerRefunds(orderId)).length, 1)
        yield* assertInvariants(orderId)
      })))

    it.effect("a refund the provider refuses → failed, its amount refundable again; the stats count refunded revenue", () =>
      test(Effect.gen(function*() {
        const orderId = yield* paidOrder
        // the provider's ledger already holds a refund of this order made outside our system: ours exceeds it
        yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql`INSERT INTO provider_refunds (idempotency_key, refund_id, order_id, amount_minor, currency, outcome)
              VALUES (${uuidv4()}, ${uuidv4()}, ${orderId}, 4000, 'EUR', 'succeeded')`).pipe(Effect.orDie)
        const accepted = yield* refund(orderId, { amount: "10.00" })
        const settled = yield* settledRefund(orderId, accepted.body.refundId)
        assert.deepInclude(settled, { status: "failed", failure: "above what is left of the charge" })
        assert.strictEqual(yield* stateOf(orderId), "PAID")
        assert.strictEqual((yield* refund(orderId, { amount: "42.50" })).status, 202)
        // stats: refunded revenue per day and the states counted
        const paidOther = yield* paidOrder
        const ok = yield* refund(paidOther, { amount: "42.50" })
        yield* settledRefund(paidOther, ok.body.refundId)
        const today = new Date().toISOString().slice(0, 10)
        const revenue = yield* waitFor("refunded revenue", Effect.map(call("GET", "/stats/revenue"), (r) => r.body.find((d: any) => d.day === today && d.currency === "EUR")), (d) => d !== undefined && d.refunds >= 1)
        assert.isAtLeast(Number(revenue.refunded), 42.5)
        const byState = yield* waitFor("REFUNDED counted", Effect.map(call("GET", "/stats/orders-by-state"), (r) => r.body), (s) => (s.REFUNDED ?? 0) >= 1)
        assert.isAtLeast(byState.REFUNDED, 1)
      })))
  })
})

/** A watch stream from `after`; `ended()` says whether the server closed it; `text` waits for the end. */
const watchText = (orderId: string, after: number) =>
  Effect.flatMap(baseUrl, (base) =>
    Effect.async<{ ended: () => boolean; text: Effect.Effect<string> }>((resume) => {
      const req = httpRequest(`${base}/orders/${orderId}/watch`, { headers: { "last-event-id": String(after) }, agent: false }, (res) => {
        let text = ""
        let done = false
        const waiters: Array<() => void> = []
        res.setEncoding("utf8")
        res.on("data", (c: string) => void (text += c))
        const finish = () => {
          done = true
          waiters.splice(0).forEach((w) => w())
        }
        res.on("end", finish)
        res.on("close", finish)
        resume(Effect.succeed({
          ended: () => done,
          text: Effect.async<string>((k) => (done ? k(Effect.succeed(text)) : void waiters.push(() => k(Effect.succeed(text)))))
        }))
      })
      req.on("error", (e) => resume(Effect.die(e)))
      req.end()
    }))
