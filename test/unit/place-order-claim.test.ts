/**
 * A keyed POST whose claim fails (src/orders/PlaceOrder.ts): it releases the claim before answering only when
 * the claim may have reached the database. A claim that got no connection holds nothing — releasing it meant
 * retrying a release against a database that was down until the request's deadline, so that every request of
 * an outage was answered 503 only after 5 s, and handed the release on to the background (found by the chaos
 * suite's pg-restart: requests unanswered within the client's 10 s on a busy machine).
 */
import { SqlError } from "@effect/sql/SqlError"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer } from "effect"
import { OrderActors } from "../../src/actor/OrderActors.js"
import { IdempotencyKeys } from "../../src/idempotency/IdempotencyKeys.js"
import { neverSent, storeError, StoreUnavailable } from "../../src/Infrastructure.js"
import { PlaceOrder, PlaceOrderLive } from "../../src/orders/PlaceOrder.js"

const refused = new SqlError({
  message: "Failed to acquire connection",
  cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" })
})
const poolTimeout = new SqlError({
  message: "Failed to acquire connection for transaction",
  cause: new Error("timeout exceeded when trying to connect")
})
const lostReply = new SqlError({ message: "Connection error", cause: new Error("Connection terminated unexpectedly") })
const readTimeout = new SqlError({ message: "Failed to execute statement", cause: new Error("Query read timeout") })

/** PlaceOrder over keys whose claim fails with `failure`, counting the releases asked for. */
const placeWithFailingClaim = (failure: SqlError) =>
  Effect.gen(function*() {
    let releases = 0
    const keys = Layer.succeed(IdempotencyKeys, IdempotencyKeys.of({
      claim: () => Effect.fail(storeError(failure)),
      release: () => Effect.sync(() => void releases++)
    }))
    // never reached: the claim fails first
    const actors = Layer.succeed(OrderActors, { execute: () => Effect.die("no append after a failed claim") } as unknown as OrderActors)
    const exit = yield* Effect.flatMap(PlaceOrder, (placeOrder) =>
      placeOrder.place({
        body: { userId: "8f0e2d0a-3f5e-4a7b-9c1d-2e3f4a5b6c7d", amount: "10.00", currency: "EUR" } as never,
        idempotencyKey: "k-1",
        correlationId: "c-1"
      })).pipe(Effect.provide(PlaceOrderLive.pipe(Layer.provide(Layer.merge(keys, actors)))), Effect.exit)
    return { exit, releases }
  })

describe("neverSent", () => {
  it("is true for the pool's acquire failures only", () => {
    assert.isTrue(neverSent(refused))
    assert.isTrue(neverSent(poolTimeout))
    assert.isTrue(neverSent(storeError(refused)), "through the store error that wraps it")
    assert.isFalse(neverSent(storeError(lostReply)))
    assert.isFalse(neverSent(storeError(readTimeout)))
    assert.isFalse(neverSent(new StoreUnavailable({ causeClass: "DatabaseUnavailable", sqlState: undefined, message: "deadline", cause: undefined })))
    assert.isFalse(neverSent(new Error("Failed to acquire connection")), "only @effect/sql's SqlError says it")
  })
})

describe("a keyed POST whose claim failed", () => {
  for (const [name, failure] of [["refused connection", refused], ["pool acquire timeout", poolTimeout]] as const) {
    it.effect(`with no connection (${name}) is answered at once and releases nothing`, () =>
      Effect.gen(function*() {
        const { exit, releases } = yield* placeWithFailingClaim(failure)
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit)) assert.include(String(exit.cause), "StoreUnavailable")
        assert.strictEqual(releases, 0)
      }))
  }

  for (const [name, failure] of [["lost reply", lostReply], ["read timeout", readTimeout]] as const) {
    it.effect(`after its statement was sent (${name}) releases the claim it may hold`, () =>
      Effect.gen(function*() {
        const { exit, releases } = yield* placeWithFailingClaim(failure)
        assert.isTrue(Exit.isFailure(exit))
        assert.strictEqual(releases, 1)
      }))
  }
})
