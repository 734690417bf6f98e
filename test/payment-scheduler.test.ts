/**
 * The payment scheduler's sweep (src/payment/PaymentScheduler.ts) on the TestClock, over a real PostgreSQL:
 * which orders one pass picks at which clock time — retries due or not yet due, orders stuck in CREATED or
 * PAYMENT_PENDING or still fresh — and the park after the last attempt. Its rule is the SQL of the pass, so
 * this is an integration test (the database); the time is the TestClock's, so nothing waits.
 * Each pass is the first pass of a scheduler built at that clock time; it is over when the scheduler sleeps.
 * The clock starts at the orders' time (`t0`): setTime runs every sleep on its way, and the actors' evictor
 * wakes every second.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Chunk, ConfigProvider, Context, Effect, Layer, Random, type Scope, TestClock, TestContext } from "effect"
import { OrderActors } from "../src/actor/OrderActors.js"
import { PgStores } from "../src/Stores.js"
import { CrashPoints } from "../src/CrashPoints.js"
import { DeadLetters } from "../src/deadletter/DeadLetters.js"
import type { OrderId, PaymentRetryScheduled } from "../src/domain/Order.js"
import { EventStore } from "../src/eventstore/EventStore.js"
import { MemoryPaymentGateway, MemoryProvider } from "../src/payment/PaymentGateway.js"
import { PaymentProcessor } from "../src/payment/PaymentProcess.js"
import { PaymentSchedulerLive } from "../src/payment/PaymentScheduler.js"
import { at, cmd, makeCommand, newId, newOrderId, p1, r1, userId, eur } from "./support/fixtures.js"
import { type RefundId, RequestRefund } from "../src/domain/Order.js"
import { kafkaStub } from "./support/KafkaStub.js"
import { onTestDatabase } from "./support/TestDatabase.js"

const POLL_MS = 3_600_000 // one pass per scheduler: the next one would be an hour later
const SWEEP_AFTER_MS = 30_000
const t0 = at.getTime()

const settings = (overrides: Record<string, string> = {}) => ConfigProvider.fromMap(new Map(Object.entries({
  PAYMENT_WORKER_GROUP: "scheduler-test",
  PAYMENT_QUICK_ATTEMPTS: "1",
  PAYMENT_MAX_ATTEMPTS: "2",
  PAYMENT_RETRY_DELAY_MS: "1000",
  BREAKER_THRESHOLD: "1000",
  RETRY_POLL_MS: String(POLL_MS),
  SWEEP_AFTER_MS: String(SWEEP_AFTER_MS),
  SCHEDULER_BATCH: "1000",
  ...overrides
})))


const liveSleep = (ms: number) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))

/** One worker (actors, payment processor, a provider that notes which orders it is asked to charge), at t0. */
const worker = (overrides: Record<string, string> = {}) => Effect.gen(function*() {
  const env = settings(overrides)
  yield* TestClock.setTime(t0)
  const context = yield* Layer.build(
    Layer.mergeAll(PaymentProcessor.Default, DeadLetters.Default).pipe(
      Layer.provideMerge(OrderActors.Default),
      Layer.provideMerge(MemoryPaymentGateway),
      Layer.provideMerge(kafkaStub("scheduler-test.")),
      Layer.provide(CrashPoints.none),
      Layer.provide(Layer.setConfigProvider(env))
    )
  )
  const charged: Array<string> = []
  let answer: "ok" | "unavailable" = "ok"
  Context.get(context, MemoryProvider).script = (request) => (charged.push(request.orderId), answer)
  /** Orders (of `mine`) the provider was asked to charge by the one scheduler pass at `time`. */
  const passAt = (time: number, mine: ReadonlyArray<OrderId>) =>
    Effect.gen(function*() {
      const before = charged.length
      yield* TestClock.setTime(time)
      yield* Layer.build(PaymentSchedulerLive.pipe(Layer.provide(Layer.succeedContext(context)), Layer.provide(Layer.setConfigProvider(env))))
      for (let i = 0; !Chunk.some(yield* TestClock.sleeps(), (wake) => wake === time + POLL_MS); i++) {
        if (i > 500) return yield* Effect.dieMessage(`the pass at ${time} did not end`)
        yield* liveSleep(20)
      }
      return charged.slice(before).filter((o) => mine.includes(o as OrderId)).sort()
    }).pipe(Effect.scoped)
  return {
    context,
    passAt,
    answer: (a: typeof answer) => void (answer = a),
    actors: Context.get(context, OrderActors),
    processor: Context.get(context, PaymentProcessor),
    store: yield* EventStore,
    deadLetters: Context.get(context, DeadLetters)
  }
})

const placeAt = (o: OrderId, time: number) =>
  makeCommand("place", { commandId: newId(), orderId: o, paymentId: p1, refundId: r1, userId, amount: eur("12.00"), at: new Date(time) })

const Db = onTestDatabase("payment_scheduler", PgStores)

describe("PaymentScheduler sweep", () => {
  // the database is built on the live clock; each test runs on a TestClock of its own
  layer(Db, { excludeTestServices: true })((it) => {
    const test = (name: string, body: () => Effect.Effect<void, unknown, Layer.Layer.Success<typeof Db> | Scope.Scope>) =>
      it.scoped(name, () => body().pipe(Effect.withRandom(Random.make(name)), Effect.provide(TestContext.TestContext)))

    test("orders in CREATED or PAYMENT_PENDING are picked only once SWEEP_AFTER_MS old", () =>
      Effect.gen(function*() {
        const w = yield* worker()
        const [created, fresh, pending] = [newOrderId(), newOrderId(), newOrderId()]
        yield* w.actors.execute(placeAt(created, t0))
        yield* w.actors.execute(placeAt(fresh, t0 + 20_000))
        yield* w.actors.execute(placeAt(pending, t0))
        yield* w.actors.execute(cmd.start(p1, pending)) // PAYMENT_PENDING since t0, its message lost
        const mine = [created, fresh, pending]
        assert.deepStrictEqual(yield* w.passAt(t0 + SWEEP_AFTER_MS, mine), [], "not older than SWEEP_AFTER_MS yet")
        assert.deepStrictEqual(yield* w.passAt(t0 + SWEEP_AFTER_MS + 1, mine), [created, pending].sort())
        // both are PAID now; the fresh one's turn comes 30 s after its own last change
        assert.deepStrictEqual(yield* w.passAt(t0 + 20_000 + SWEEP_AFTER_MS, mine), [])
        assert.deepStrictEqual(yield* w.passAt(t0 + 20_000 + SWEEP_AFTER_MS + 1, mine), [fresh])
        const paid = yield* Effect.forEach(mine, (o) => w.actors.load(o))
        assert.deepStrictEqual(paid.map((o) => o?.status), ["PAID", "PAID", "PAID"])
      }))

    test("a pass that drove a full batch is followed by the next at once: a backlog drains within one poll", () =>
      Effect.gen(function*() {
        const w = yield* worker({ SCHEDULER_BATCH: "2" })
        const mine = Array.from({ length: 5 }, () => newOrderId())
        for (const o of mine) yield* w.actors.execute(placeAt(o, t0)) // five CREATED orders, their messages lost
        // passes of 2, 2 and 1 (not full: then it sleeps until the next poll)
        assert.deepStrictEqual(yield* w.passAt(t0 + SWEEP_AFTER_MS + 1, mine), [...mine].sort())
        const paid = yield* Effect.forEach(mine, (o) => w.actors.load(o))
        assert.deepStrictEqual(paid.map((o) => o?.status), mine.map(() => "PAID" as const))
      }))

    test("a scheduled retry is picked when due, not before, and not as a stuck order; after the last attempt it is parked", () =>
      Effect.gen(function*() {
        const w = yield* worker()
        const o = newOrderId()
        const placed = yield* w.actors.execute(placeAt(o, t0))
        w.answer("unavailable")
        yield* TestClock.setTime(t0 + 1000)
        assert.strictEqual(yield* w.processor.handle(placed.events[0]!.eventId, o), "retry-scheduled")
        const retries = () =>
          Effect.map(w.store.readStream(o), (rs) => rs.flatMap((r) => r.event._tag === "PaymentRetryScheduled" ? [r.event as PaymentRetryScheduled] : []))
        const [first] = yield* retries()
        const due = first!.dueAt!.getTime()
        assert.deepStrictEqual(yield* w.passAt(due - 1, [o]), [], "not yet due")
        assert.deepStrictEqual(yield* w.passAt(due, [o]), [o], "due")
        // that was the 2nd failed pass of PAYMENT_MAX_ATTEMPTS = 2: parked, with a dead letter, still PAYMENT_PENDING
        const last = (yield* retries()).at(-1)!
        assert.strictEqual(last.attempt, 2)
        assert.isNull(last.dueAt)
        assert.strictEqual((yield* w.actors.load(o))?.status, "PAYMENT_PENDING")
        const parked = (yield* w.deadLetters.list("parked", 1000)).filter((d) => d.offset === `payment/2/${placed.events[0]!.eventId}`)
        assert.strictEqual(parked.length, 1)
        assert.strictEqual(parked[0]!.attempts, 2)
        // a parked payment is the operator's: no later pass picks it, not even as a stuck order
        assert.deepStrictEqual(yield* w.passAt(due + 2 * SWEEP_AFTER_MS, [o]), [])
      }))

    test("a parked payment the provider has a result for is settled by it, charging nothing; one it has none for stays parked", () =>
      Effect.gen(function*() {
        const w = yield* worker({ PAYMENT_MAX_ATTEMPTS: "1" })
        const [charged, uncharged] = [newOrderId(), newOrderId()]
        w.answer("unavailable")
        yield* TestClock.setTime(t0 + 1000)
        for (const o of [charged, uncharged]) {
          const placed = yield* w.actors.execute(placeAt(o, t0))
          const parked = yield* Effect.flip(w.processor.handle(placed.events[0]!.eventId, o))
          assert.strictEqual(parked._tag, "PaymentParked")
        }
        // the charge another worker's copy took and died before recording: only the provider knows of it
        const order = (yield* w.actors.load(charged))!
        const ledger = Context.get(w.context, MemoryProvider).ledger
        ledger.set(order.paymentId!, { idempotencyKey: order.paymentId!, orderId: charged, amountMinor: 1200n, currency: "EUR", outcome: "succeeded", chargeId: "ch-elsewhere" })
        w.answer("ok")
        const mine = [charged, uncharged]
        assert.deepStrictEqual(yield* w.passAt(t0 + 1000 + SWEEP_AFTER_MS, mine), [], "a call of the park's time may still be in flight")
        assert.strictEqual((yield* w.actors.load(charged))?.status, "PAYMENT_PENDING")
        assert.deepStrictEqual(yield* w.passAt(t0 + 1000 + SWEEP_AFTER_MS + 1, mine), [], "asked, not charged")
        assert.strictEqual((yield* w.actors.load(charged))?.status, "PAID")
        const paid = (yield* w.store.readStream(charged)).at(-1)!.event
        assert.strictEqual(paid._tag, "OrderPaid")
        assert.strictEqual((yield* w.actors.load(uncharged))?.status, "PAYMENT_PENDING")
        assert.isFalse(ledger.has((yield* w.actors.load(uncharged))!.paymentId!))
      }))

    test("a parked refund the provider made is settled by its record, refunding nothing; one it has no record of stays parked", () =>
      Effect.gen(function*() {
        const w = yield* worker({ PAYMENT_MAX_ATTEMPTS: "1" })
        const o = newOrderId()
        const placed = yield* w.actors.execute(placeAt(o, t0))
        yield* w.processor.handle(placed.events[0]!.eventId, o)
        assert.strictEqual((yield* w.actors.load(o))?.status, "PAID")
        yield* TestClock.setTime(t0 + 1000)
        w.answer("unavailable")
        const [made, unmade] = [newId<RefundId>(), newId<RefundId>()]
        for (const refundId of [made, unmade]) {
          const asked = yield* w.actors.execute(new RequestRefund({
            commandId: newId(), orderId: o, refundId, amount: eur("5.00"), reason: null, at: new Date(t0 + 1000)
          }))
          const parked = yield* Effect.flip(w.processor.handleRefund(asked.events[0]!.eventId, o, refundId))
          assert.strictEqual(parked._tag, "PaymentParked")
        }
        // the provider made one of them (its answer lost): only the provider knows
        const refunds = Context.get(w.context, MemoryProvider).refunds
        refunds.set(made, { idempotencyKey: made, orderId: o, amountMinor: 500n, currency: "EUR", outcome: "succeeded", providerRefundId: "re-lost" })
        w.answer("ok")
        assert.deepStrictEqual(yield* w.passAt(t0 + 1000 + SWEEP_AFTER_MS, [o]), [], "a call of the park's time may still be in flight")
        assert.isTrue((yield* w.actors.load(o))!.refunds.every((r) => r.status === "pending" && r.parked))
        assert.deepStrictEqual(yield* w.passAt(t0 + 1000 + SWEEP_AFTER_MS + 1, [o]), [], "asked, not refunded")
        const order = (yield* w.actors.load(o))!
        assert.deepStrictEqual(order.refunds.map((r) => [r.refundId, r.status, r.parked]), [[made, "succeeded", false], [unmade, "pending", true]])
        assert.strictEqual(order.status, "PARTIALLY_REFUNDED")
        assert.isFalse(refunds.has(unmade))
      }))
  })
})
