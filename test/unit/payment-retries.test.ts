/**
 * Retry schedules of one payment (src/payment/PaymentProcess.ts) on the TestClock, over the in-memory stores
 * and provider: the quick attempts in process (exponential from PAYMENT_RETRY_BASE_MS, jittered), then the
 * durable retries' dueAt sequence (doubling from PAYMENT_RETRY_DELAY_MS, capped at PAYMENT_RETRY_MAX_DELAY_MS,
 * jittered ±20 %), the park after PAYMENT_MAX_ATTEMPTS failed passes, and the open breaker costing no attempt.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Context, Duration, Effect, Either, Fiber, Layer, Random, TestClock } from "effect"
import { OrderActors } from "../../src/actor/OrderActors.js"
import { MemoryStores } from "../../src/Stores.js"
import { CrashPoints } from "../../src/CrashPoints.js"
import type { PaymentRetryScheduled } from "../../src/domain/Order.js"
import { EventStore } from "../../src/eventstore/EventStore.js"
import { MemoryPaymentGateway, MemoryProvider } from "../../src/payment/PaymentGateway.js"
import { PaymentProcessor } from "../../src/payment/PaymentProcess.js"
import { cmd, fixedOrderId } from "../support/fixtures.js"

const settle = Effect.repeatN(Effect.yieldNow(), 50)

const defaults = {
  PAYMENT_WORKER_GROUP: "unit",
  PAYMENT_QUICK_ATTEMPTS: "1",
  PAYMENT_RETRY_BASE_MS: "100",
  PAYMENT_MAX_ATTEMPTS: "6",
  PAYMENT_RETRY_DELAY_MS: "1000",
  PAYMENT_RETRY_MAX_DELAY_MS: "5000",
  BREAKER_THRESHOLD: "1000",
  BREAKER_COOLDOWN_MS: "2000"
}

/** A worker's payment processor over fresh in-memory stores and a provider that counts its calls. */
const worker = (env: Partial<typeof defaults> = {}) =>
  Effect.gen(function*() {
    const config = ConfigProvider.fromMap(new Map(Object.entries({ ...defaults, ...env })))
    const context = yield* Layer.build(
      PaymentProcessor.Default.pipe(
        Layer.provideMerge(OrderActors.Default),
        Layer.provideMerge(MemoryStores),
        Layer.provideMerge(MemoryPaymentGateway),
        Layer.provide(CrashPoints.none),
        Layer.provide(Layer.setConfigProvider(config))
      )
    )
    const provider = Context.get(context, MemoryProvider)
    const clock = yield* Effect.clock
    const callTimes: Array<number> = []
    let answer: "ok" | "unavailable" = "unavailable"
    provider.script = () => (callTimes.push(clock.unsafeCurrentTimeMillis()), answer)
    const processor = Context.get(context, PaymentProcessor)
    const store = Context.get(context, EventStore)
    const o = fixedOrderId(7)
    const placed = yield* Context.get(context, OrderActors).execute(cmd.place(o))
    return {
      processor,
      calls: () => callTimes.length,
      /** The clock time of each call to the provider. */
      callTimes,
      answer: (a: typeof answer) => void (answer = a),
      /** The order's OrderPlaced message, handled as the consumer would. */
      handle: processor.handle(placed.events[0]!.eventId, o),
      redrive: processor.redrive(o),
      retries: Effect.map(store.readStream(o), (rs) =>
        rs.flatMap((r) => r.event._tag === "PaymentRetryScheduled" ? [r.event as PaymentRetryScheduled] : []))
    }
  }).pipe(Effect.withRandom(Random.make("payment-retries")))

const waitOf = (r: PaymentRetryScheduled) => r.dueAt!.getTime() - r.occurredAt.getTime()

describe("payment retry schedules", () => {
  it.scoped("quick attempts: retried in process after 100 ms, then 200 ms (each ±20 %), then a durable retry", () =>
    Effect.gen(function*() {
      const w = yield* worker({ PAYMENT_QUICK_ATTEMPTS: "3" })
      const pass = yield* Effect.fork(w.handle)
      yield* TestClock.adjust(Duration.millis(360)) // at most 120 + 240
      const [first, second, third] = w.callTimes
      assert.strictEqual(first, 0)
      assert.isTrue(second! >= 80 && second! <= 120, `second call at ${second} ms`)
      assert.isTrue(third! - second! >= 160 && third! - second! <= 240, `third call ${third! - second!} ms after the second`)
      assert.notDeepEqual([second, third! - second!], [100, 200], "jittered, not the nominal delays")
      assert.strictEqual(yield* Fiber.join(pass), "retry-scheduled")
      assert.strictEqual(w.calls(), 3)
      assert.deepStrictEqual((yield* w.retries).map((r) => r.attempt), [1], "three calls are one failed pass")
    }))

  it.scoped("a success among the quick attempts settles the order without a durable retry", () =>
    Effect.gen(function*() {
      const w = yield* worker({ PAYMENT_QUICK_ATTEMPTS: "3" })
      const pass = yield* Effect.fork(w.handle)
      yield* settle
      w.answer("ok")
      yield* TestClock.adjust(Duration.millis(120))
      assert.strictEqual(yield* Fiber.join(pass), "processed")
      assert.strictEqual(w.calls(), 2)
      assert.deepStrictEqual(yield* w.retries, [])
    }))

  it.scoped("durable retries: due after 1, 2, 4 s, then capped at 5 s, each ±20 %; parked after the 6th failed pass", () =>
    Effect.gen(function*() {
      const w = yield* worker()
      assert.strictEqual(yield* w.handle, "retry-scheduled")
      for (let pass = 2; pass <= 5; pass++) {
        const [last] = (yield* w.retries).slice(-1)
        yield* TestClock.setTime(last!.dueAt!.getTime()) // the scheduler re-drives it when it is due
        assert.strictEqual(yield* w.redrive, "retry-scheduled")
      }
      const retries = yield* w.retries
      assert.deepStrictEqual(retries.map((r) => r.attempt), [1, 2, 3, 4, 5])
      const nominal = [1000, 2000, 4000, 5000, 5000]
      retries.forEach((r, i) => {
        const wait = waitOf(r)
        assert.isAtLeast(wait, nominal[i]! * 0.8, `attempt ${r.attempt}: ${wait} ms`)
        assert.isAtMost(wait, nominal[i]! * 1.2, `attempt ${r.attempt}: ${wait} ms`)
      })
      assert.isTrue(retries.some((r, i) => waitOf(r) !== nominal[i]), "jittered, not the nominal delays")

      yield* TestClock.setTime(retries[4]!.dueAt!.getTime())
      const parked = yield* Effect.either(w.redrive)
      assert.isTrue(Either.isLeft(parked) && parked.left._tag === "PaymentParked" && parked.left.attempts === 6, JSON.stringify(parked))
      const last = (yield* w.retries).at(-1)!
      assert.strictEqual(last.attempt, 6)
      assert.isNull(last.dueAt, "a parked payment has no due time: it is the operator's")
      assert.strictEqual(w.calls(), 6)
    }))

  it.scoped("with the breaker open a pass makes no call and costs no attempt: it is due when the probe is", () =>
    Effect.gen(function*() {
      const w = yield* worker({ BREAKER_THRESHOLD: "1", BREAKER_COOLDOWN_MS: "2000" })
      assert.strictEqual(yield* w.handle, "retry-scheduled") // the failure opens the breaker
      assert.strictEqual(w.processor.breakerState(), "Open")
      yield* TestClock.adjust(Duration.millis(500))
      assert.strictEqual(yield* w.redrive, "retry-scheduled")
      assert.strictEqual(w.calls(), 1, "refused by the open breaker, not called")
      const [first, second] = yield* w.retries
      assert.strictEqual(second!.attempt, first!.attempt, "no attempt spent")
      assert.strictEqual(second!.dueAt!.getTime(), 2000, "due when the cooldown ends (TestClock started at 0)")
      yield* TestClock.setTime(2000)
      w.answer("ok")
      assert.strictEqual(yield* w.redrive, "processed")
      assert.strictEqual(w.processor.breakerState(), "Closed")
    }))
})
