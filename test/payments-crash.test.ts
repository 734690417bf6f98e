/**
 * End to end on the real PostgreSQL and the real Kafka broker (a system of its own, suite "payments_crash"):
 * crashes at the relay's named points (after send before mark; before send, then mid-batch) and the worker's
 * (after charge before commit, after commit before offset commit) — every order paid, charged once, no event
 * twice.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Metric } from "effect"
import { CrashPoints } from "../src/CrashPoints.js"
import { duplicatesSkipped } from "../src/payment/PaymentMetrics.js"
import { assertInvariants, charges, outboxDrained, place, settle, stateOf, test } from "./support/payments.js"
import { call } from "./support/TestApp.js"
import { TestSystem } from "./support/TestSystem.js"
import { waitFor } from "./support/waitFor.js"

describe("payments end to end", () => {
  layer(TestSystem("payments_crash"), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("relay crash between send and mark → republished, the duplicate absorbed, one charge", () =>
      test(Effect.gen(function*() {
        const crash = yield* CrashPoints
        const before = (yield* Metric.value(duplicatesSkipped)).count
        // the relay crashes at its next batch: the events reach Kafka, the rows stay unpublished; the
        // restarted relay (a new pass: the relay keeps nothing in memory) publishes them again
        yield* outboxDrained
        yield* crash.arm("relay.afterSendBeforeMark")
        const orderId = yield* place
        yield* settle(orderId)
        yield* waitFor("duplicate skipped", Metric.value(duplicatesSkipped), (v) => v.count > before)
        assert.strictEqual(yield* crash.crashes("relay.afterSendBeforeMark"), 1)
        yield* outboxDrained
        assert.strictEqual(yield* charges(orderId), 1)
        assert.strictEqual(yield* stateOf(orderId), "PAID")
        yield* assertInvariants(orderId)
      })))

    it.effect("relay crash before send, then mid-batch → the whole batch goes again, every order paid once", () =>
      test(Effect.gen(function*() {
        const crash = yield* CrashPoints
        // the first pass crashes before sending; meanwhile the orders commit, so the next pass is one batch,
        // which crashes after its first half reached Kafka
        yield* outboxDrained
        yield* crash.arm("relay.beforeSend")
        yield* crash.arm("relay.midBatch")
        const orders = yield* Effect.all(Array.from({ length: 4 }, () => place), { concurrency: 4 })
        const states = yield* Effect.forEach(orders, settle)
        assert.deepStrictEqual(states, orders.map(() => "PAID"))
        assert.strictEqual(yield* crash.crashes("relay.beforeSend"), 1)
        assert.strictEqual(yield* crash.crashes("relay.midBatch"), 1)
        for (const o of orders) assert.strictEqual(yield* charges(o), 1)
        yield* outboxDrained
        for (const o of orders) yield* assertInvariants(o)
      })))

    for (const point of ["worker.afterChargeBeforeCommit", "worker.afterCommitBeforeOffsetCommit"] as const) {
      it.effect(`worker crash at ${point} → the batch is redelivered, exactly one charge, no event twice`, () =>
        test(Effect.gen(function*() {
          const crash = yield* CrashPoints
          const fired = yield* crash.crashes(point)
          yield* crash.arm(point)
          const orderId = yield* place
          assert.strictEqual(yield* settle(orderId), "PAID")
          // the crash hits the next batch the worker finishes (this order's, or another event's)
          yield* waitFor("the crash", crash.crashes(point), (n) => n === fired + 1)
          const events = yield* Effect.forEach(
            [orderId],
            (id) => Effect.map(call("GET", `/orders/${id}/events`), (r) => r.body.length as number)
          )
          assert.deepStrictEqual(events, [3])
          assert.strictEqual(yield* charges(orderId), 1)
          yield* assertInvariants(orderId)
        })))
    }
  })
})
