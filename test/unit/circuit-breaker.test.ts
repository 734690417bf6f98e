/** The payment circuit breaker (src/payment/CircuitBreaker.ts) on the TestClock: no provider, no sleeps. */
import { assert, describe, it } from "@effect/vitest"
import { Data, Duration, Effect, Either, TestClock } from "effect"
import { makeCircuitBreaker } from "../../src/payment/CircuitBreaker.js"

class Down extends Data.TaggedError("Down")<{ readonly transient: boolean }> {}

/** A provider stand-in that counts its calls and answers as `next` says. */
const provider = () => {
  let calls = 0
  let next: "ok" | "down" | "refused" = "ok"
  const call = Effect.suspend(() => {
    calls++
    return next === "ok" ? Effect.succeed("charged") : Effect.fail(new Down({ transient: next === "down" }))
  })
  return { call, calls: () => calls, answer: (a: typeof next) => void (next = a) }
}

const setup = Effect.gen(function*() {
  const breaker = yield* makeCircuitBreaker({ threshold: 3, cooldown: Duration.millis(2000) })
  const p = provider()
  const run = breaker.run(p.call, (e) => e.transient).pipe(Effect.either)
  /** Open the breaker: `threshold` transient failures (and nothing else in the window). */
  const trip = Effect.suspend(() => (p.answer("down"), Effect.repeatN(run, 2)))
  return { breaker, p, run, trip }
})

describe("CircuitBreaker", () => {
  it.effect("an outage: opens at `threshold` transient failures", () =>
    Effect.gen(function*() {
      const { breaker, p, run } = yield* setup
      p.answer("down")
      yield* run
      yield* run
      assert.strictEqual(breaker.state(), "Closed")
      yield* run
      assert.strictEqual(breaker.state(), "Open")
      assert.strictEqual(p.calls(), 3)
    }))

  it.effect("a provider failing a few percent of calls never opens it, even three failures in a row", () =>
    Effect.gen(function*() {
      const { breaker, p, run } = yield* setup
      for (let i = 0; i < 400; i++) {
        // 5 % failing, and once three in a row (the chance that opened the old consecutive-count breaker)
        p.answer(i % 20 === 0 || (i >= 200 && i < 203) ? "down" : "ok")
        yield* run
        yield* TestClock.adjust(Duration.millis(5))
      }
      assert.strictEqual(breaker.state(), "Closed")
      assert.strictEqual(p.calls(), 400)
    }))

  it.effect("failures outweighing the window's successes open it", () =>
    Effect.gen(function*() {
      const { breaker, p, run } = yield* setup
      p.answer("down")
      yield* run
      p.answer("ok")
      yield* run
      p.answer("down")
      yield* run
      assert.strictEqual(breaker.state(), "Closed")
      yield* run
      assert.strictEqual(breaker.state(), "Open")
    }))

  it.effect("failures older than the window do not count", () =>
    Effect.gen(function*() {
      const { breaker, p, run } = yield* setup
      p.answer("down")
      yield* run
      yield* run
      yield* TestClock.adjust(Duration.seconds(10))
      yield* run
      assert.strictEqual(breaker.state(), "Closed")
      yield* run
      yield* run
      assert.strictEqual(breaker.state(), "Open")
    }))

  it.effect("non-transient failures do not count", () =>
    Effect.gen(function*() {
      const { breaker, p, run } = yield* setup
      p.answer("refused")
      for (let i = 0; i < 5; i++) yield* run
      assert.strictEqual(breaker.state(), "Closed")
      assert.strictEqual(p.calls(), 5)
    }))

  it.effect("open: rejects without calling the provider, with the time left", () =>
    Effect.gen(function*() {
      const { breaker, p, run, trip } = yield* setup
      yield* trip
      yield* TestClock.adjust(Duration.millis(500))
      const refused = yield* run
      assert.isTrue(Either.isLeft(refused) && refused.left._tag === "BreakerOpen" && refused.left.retryAfterMs === 1500)
      assert.strictEqual(p.calls(), 3)
      assert.strictEqual(yield* breaker.refusedFor, 1500)
    }))

  it.effect("half-open after the cooldown: one probe; its success closes the breaker", () =>
    Effect.gen(function*() {
      const { breaker, p, run, trip } = yield* setup
      yield* trip
      yield* TestClock.adjust(Duration.millis(1999))
      yield* run
      assert.strictEqual(p.calls(), 3, "still open 1 ms before the cooldown ends")
      yield* TestClock.adjust(Duration.millis(1))
      assert.strictEqual(yield* breaker.refusedFor, 0)
      p.answer("ok")
      const probe = yield* run
      assert.deepStrictEqual(probe, Either.right("charged"))
      assert.strictEqual(p.calls(), 4)
      assert.strictEqual(breaker.state(), "Closed")
      yield* run
      assert.strictEqual(p.calls(), 5)
    }))

  it.effect("half-open: calls beside the probe are refused", () =>
    Effect.gen(function*() {
      const { breaker, p, trip } = yield* setup
      yield* trip
      yield* TestClock.adjust(Duration.millis(2000))
      // a probe that takes 100 ms: while it runs, the breaker is half-open
      const slow = Effect.zipRight(Effect.sleep(Duration.millis(100)), Effect.succeed("charged"))
      const probe = yield* Effect.fork(breaker.run(slow, () => true))
      yield* Effect.yieldNow()
      assert.strictEqual(breaker.state(), "HalfOpen")
      const beside = yield* breaker.run(p.call, (e) => e.transient).pipe(Effect.either)
      assert.isTrue(Either.isLeft(beside) && beside.left._tag === "BreakerOpen")
      assert.strictEqual(p.calls(), 3)
      yield* TestClock.adjust(Duration.millis(100))
      assert.strictEqual(yield* probe.await.pipe(Effect.flatten), "charged")
      assert.strictEqual(breaker.state(), "Closed")
    }))

  it.effect("a failed probe opens the breaker again for a full cooldown, reported as BreakerOpen", () =>
    Effect.gen(function*() {
      const { breaker, p, run, trip } = yield* setup
      yield* trip
      yield* TestClock.adjust(Duration.millis(2000))
      const probe = yield* run
      assert.isTrue(Either.isLeft(probe) && probe.left._tag === "BreakerOpen")
      assert.strictEqual(p.calls(), 4)
      assert.strictEqual(breaker.state(), "Open")
      assert.strictEqual(yield* breaker.refusedFor, 2000)
      yield* TestClock.adjust(Duration.millis(1999))
      yield* run
      assert.strictEqual(p.calls(), 4)
      yield* TestClock.adjust(Duration.millis(1))
      p.answer("ok")
      yield* run
      assert.strictEqual(p.calls(), 5)
      assert.strictEqual(breaker.state(), "Closed")
    }))
})
