/**
 * P13 — refunds (issue 21), against the in-memory and the PostgreSQL stores, through the production code from
 * the actor to the provider (the same driver as the payment properties: relay, in-memory topic, keyed
 * dispatcher over the worker's handler, the scheduler's re-drive, dead letters replayed):
 * random waves of refund requests on a paid order — concurrent, the same refund id again (an Idempotency-Key
 * retried, with the same or another amount), amounts up to above the charge — with provider faults (refused,
 * unavailable), crashes after the provider's answer and after the commit, and copies of the messages → at
 * quiescence: every refund settled; the succeeded refunds never above the charge; the provider holds exactly
 * one refund per refund id the worker asked for, and none for any other key; the order's `refunded` equals the
 * provider's refunded total; each stored log legal (its refunds within what was left) and the projection its fold.
 * Mutation check: refunds sent without the idempotency key must fail it.
 */
import { afterAll, describe, it } from "@effect/vitest"
import { Context, Effect, Either, Layer } from "effect"
import { CrashPoints } from "../src/CrashPoints.js"
import { Money } from "../src/domain/Money.js"
import { type OrderId, type RefundId, RequestRefund } from "../src/domain/Order.js"
import { uuidv4, uuidv7 } from "../src/Ids.js"
import { fromMessage } from "../src/kafka/Envelope.js"
import { MemoryProvider } from "../src/payment/PaymentGateway.js"
import { cmd } from "../test/support/fixtures.js"
import { checkStoredOrder } from "../test/support/invariants.js"
import { durableLayer, MemoryTopic, run, storesFor } from "./harness.js"
import { makeWorkerDriver } from "./worker-driver.js"
import { type Backend, fc, params } from "./support.js"

type Fault = "ok" | "decline" | "unavailable"
type Crash = "none" | "afterRefund" | "afterCommit"

interface Request {
  /** which of four refund ids (an Idempotency-Key): a repeated one is a retried request */
  readonly refund: number
  readonly minor: bigint
}

interface Scenario {
  readonly waves: ReadonlyArray<{ readonly requests: ReadonlyArray<Request>; readonly crash: Crash; readonly copies: boolean }>
  readonly faults: ReadonlyArray<Fault>
}

/** The order's charge: cmd.place's 299.99 EUR. */
const CHARGE = 29999n

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  waves: fc.array(
    fc.record({
      requests: fc.array(
        fc.record({
          refund: fc.integer({ min: 0, max: 3 }),
          minor: fc.oneof(fc.bigInt({ min: 1n, max: 12000n }), fc.constantFrom(CHARGE, CHARGE + 1n, 10000n))
        }),
        { minLength: 1, maxLength: 3 }
      ),
      crash: fc.constantFrom<Crash>("none", "none", "afterRefund", "afterCommit"),
      copies: fc.boolean()
    }),
    { minLength: 1, maxLength: 4 }
  ),
  faults: fc.array(fc.constantFrom<Fault>("ok", "ok", "decline", "unavailable", "unavailable"), { maxLength: 10 })
})

const runScenario = (backend: Backend, stores: Layer.Layer<any>, scenario: Scenario, broken: boolean) =>
  Effect.scoped(Effect.gen(function*() {
    const durable = yield* Layer.build(durableLayer(stores, broken, backend))
    const provider = Context.get(durable, MemoryProvider)
    const crashes = Context.get(durable, CrashPoints)
    const topic = Context.get(durable, MemoryTopic)
    const worker = yield* makeWorkerDriver(durable)
    const violations: Array<string> = []

    // a paid order (the provider healthy while it pays)
    const orderId = uuidv7() as OrderId
    yield* worker.actors().execute(cmd.place(orderId)).pipe(Effect.orDie)
    yield* worker.drainOutbox([])
    if (!(yield* worker.settle([orderId], false))) violations.push("the payment never settled")
    const faults = [...scenario.faults]
    provider.script = () => faults.shift() ?? "ok"

    const refundIds = Array.from({ length: 4 }, () => uuidv4() as RefundId)
    for (const wave of scenario.waves) {
      if (wave.crash === "afterRefund") yield* crashes.arm("worker.afterRefundBeforeCommit")
      if (wave.crash === "afterCommit") yield* crashes.arm("worker.afterCommitBeforeOffsetCommit")
      // the wave's requests at once (refused ones are answers, not failures)
      yield* Effect.forEach(wave.requests, (r) =>
        worker.actors().execute(new RequestRefund({
          commandId: uuidv4() as RequestRefund["commandId"],
          orderId,
          refundId: refundIds[r.refund]!,
          amount: new Money({ minor: r.minor, currency: "EUR" as Money["currency"] }),
          reason: null,
          at: new Date()
        })).pipe(Effect.either), { concurrency: "unbounded", discard: true })
      const before = topic.length
      yield* worker.drainOutbox([])
      // copies of this wave's messages (a producer's retry): sent again
      if (wave.copies) topic.push(...topic.slice(before))
      if (!(yield* worker.settle([orderId], false))) violations.push("the consumer never settled")
    }

    // quiescence: the provider healthy, the parked refunds' dead letters replayed, everything published
    faults.length = 0
    worker.replayParked()
    if (!(yield* worker.settle([orderId], false))) violations.push("the consumer never settled after the replay")
    yield* worker.drainOutbox([])

    const stored = yield* checkStoredOrder(orderId).pipe(Effect.provide(durable))
    violations.push(...stored.violations)
    const order = stored.state
    if (order === undefined) return ["no order"]
    const pending = order.refunds.filter((r) => r.status === "pending")
    if (pending.length > 0) violations.push(`${pending.length} refunds still pending`)
    if (order.refunded > CHARGE) violations.push(`refunded ${order.refunded} above the charge ${CHARGE}`)
    // the provider: one refund per refund id the worker asked for, none under any other key
    const ours = new Map(order.refunds.map((r) => [r.refundId as string, r]))
    for (const [key, made] of provider.refunds) {
      const refund = ours.get(key)
      if (refund === undefined) violations.push(`the provider holds a refund under ${key}, no refund id of ours`)
      else if (made.amountMinor !== refund.amount.minor) violations.push(`${key}: provider ${made.amountMinor}, ours ${refund.amount.minor}`)
      else if ((made.outcome === "succeeded") !== (refund.status === "succeeded")) violations.push(`${key}: provider ${made.outcome}, ours ${refund.status}`)
    }
    const theirs = [...provider.refunds.values()].reduce((sum, r) => r.outcome === "succeeded" ? sum + r.amountMinor : sum, 0n)
    if (theirs !== order.refunded) violations.push(`the provider refunded ${theirs}, the order says ${order.refunded}`)
    // every RefundRequested reached the topic
    const requested = topic.filter((m) => {
      const d = fromMessage(m.value)
      return Either.isRight(d) && d.right.envelope.type === "RefundRequested"
    })
    if (order.refunds.length > 0 && requested.length === 0) violations.push("no RefundRequested on the topic")
    return violations
  }))

const property = (backend: Backend, stores: () => Layer.Layer<any>, broken = false) =>
  fc.asyncProperty(scenarioArb, async (scenario) => {
    await new Promise((resolve) => setImmediate(resolve))
    const violations = await run(runScenario(backend, stores(), scenario, broken))
    if (violations.length > 0) throw new Error(violations.join("\n"))
  })

for (const backend of ["memory", "postgres"] as Array<Backend>) {
  describe(`refund properties (${backend})`, () => {
    const stores = storesFor(backend, `props_refunds_${backend}`)
    afterAll(() => stores.dispose())
    it("P13 refunds: never above the charge, one provider refund per refund id, the log agrees with the provider", async () => {
      await fc.assert(property(backend, stores.fresh), params(backend))
    }, 300_000)
  })
}

describe("mutation check: the refund property catches a broken worker", () => {
  const stores = storesFor("memory", "unused")
  it("P13 fails when refunds are sent without the idempotency key", async () => {
    const result = await fc.check(property("memory", stores.fresh, true), { numRuns: 200 })
    if (!result.failed) throw new Error("P13 did not catch the missing idempotency key")
  }, 120_000)
})
