/**
 * End to end on the real PostgreSQL and the real Kafka broker, with no breaker in the way: a flaky provider
 * exhausts a message's attempts, it is parked in dead letters with its error and attempt count, and its
 * replay after the fix pays the order with one charge.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { admin, assertInvariants, charges, place, provider, settle, stateOf, test } from "./support/payments.js"
import { call } from "./support/TestApp.js"
import { TestSystem } from "./support/TestSystem.js"
import { waitFor } from "./support/waitFor.js"

describe("payments: retries exhausted", () => {
  // no breaker in the way here: a flaky provider exhausts the message's attempts and it is parked
  layer(TestSystem("payments_dlq", { env: { BREAKER_THRESHOLD: "1000", PAYMENT_MAX_ATTEMPTS: "3" } }), {
    excludeTestServices: true,
    timeout: "60 seconds"
  })((it) => {
    it.effect("parked after N attempts with error and attempt count; replay after the fix → PAID, one charge", () =>
      test(Effect.gen(function*() {
        yield* provider({ transientErrorRate: 1 })
        const orderId = yield* place
        const parked = yield* waitFor(
          "parked",
          Effect.map(call("GET", "/admin/dead-letters?status=parked", { headers: admin }), (r) => r.body as Array<any>),
          (list) => list.some((d) => d.key === orderId)
        )
        const letter = parked.find((d) => d.key === orderId)
        assert.strictEqual(letter.attempts, 3)
        assert.match(letter.error, /unavailable/)
        assert.strictEqual(yield* stateOf(orderId), "PAYMENT_PENDING")
        assert.strictEqual(yield* charges(orderId), 0)
        yield* provider({ transientErrorRate: 0 })
        const replayed = yield* call("POST", `/admin/dead-letters/${letter.id}/replay`, { headers: admin })
        assert.strictEqual(replayed.status, 200)
        assert.strictEqual(replayed.body.status, "replayed")
        assert.strictEqual(yield* settle(orderId), "PAID")
        assert.strictEqual(yield* charges(orderId), 1)
        // replaying again is refused: it is no longer parked
        assert.strictEqual((yield* call("POST", `/admin/dead-letters/${letter.id}/replay`, { headers: admin })).status, 409)
        yield* assertInvariants(orderId)
      })))
  })
})
