/**
 * P2 (model-based) — the order actors and the event store against a simple model, with fc.commands:
 * a plain map of status, payment id and refunds per order, and a transition table written independently of
 * the decider (refunds in the mix: never above the charge, pending ones counted). Each command's outcome (appended / already satisfied / rejected) and the order's resulting state
 * must be the model's; versions stay 1..n. Runs on the in-memory and the PostgreSQL stores.
 * (Concurrent interleavings across two processes are P2 in p2-p3-p6-store.test.ts.)
 */
import { afterAll, describe, it } from "@effect/vitest"
import { Context, Effect, Either, Layer, type Scope } from "effect"
import { OrderActors } from "../src/actor/OrderActors.js"
import { Money } from "../src/domain/Money.js"
import type { OrderId, PaymentId, RefundId } from "../src/domain/Order.js"
import { EventStore } from "../src/eventstore/EventStore.js"
import { uuidv7 } from "../src/Ids.js"
import { type CommandKind as Kind, commandOf, paymentIds, refundIds } from "../test/support/fixtures.js"
import { run, storesFor } from "./harness.js"
import { type Backend, fc, params } from "./support.js"

type Status = "CREATED" | "PAYMENT_PENDING" | "PAID" | "FAILED" | "CANCELLED" | "PARTIALLY_REFUNDED" | "REFUNDED"
type Outcome = "appended" | "nothing" | "rejected"

/** One order of the model: its status, payment, and refunds (minor units of the 299.99 EUR charge). */
interface ModelOrder {
  readonly status: Status | undefined
  readonly payment: string | undefined
  readonly refunds: ReadonlyMap<string, { readonly minor: bigint; readonly status: "pending" | "succeeded" | "failed" }>
}

interface Model {
  orders: Array<ModelOrder>
}

const CHARGE = 29999n
const paid = (status: Status | undefined) => status === "PAID" || status === "PARTIALLY_REFUNDED" || status === "REFUNDED"
const sum = (order: ModelOrder, ...statuses: ReadonlyArray<string>) =>
  [...order.refunds.values()].reduce((total, r) => statuses.includes(r.status) ? total + r.minor : total, 0n)

interface Real {
  readonly actors: OrderActors
  readonly store: EventStore["Type"]
  readonly ids: ReadonlyArray<OrderId>
}


/** The model's transition table: what a command does to an order, independent of the decider. */
const expect = (kind: Kind, order: ModelOrder, payment: string, refund: { id: string; minor: bigint }): Outcome => {
  const { status } = order
  const known = order.refunds.get(refund.id)
  switch (kind) {
    case "place":
      return status === undefined ? "appended" : "nothing"
    case "start":
      if (status === "CREATED") return "appended"
      return status === "PAYMENT_PENDING" && order.payment === payment ? "nothing" : "rejected"
    case "succeed":
      if (status === "PAYMENT_PENDING" && order.payment === payment) return "appended"
      return paid(status) && order.payment === payment ? "nothing" : "rejected"
    case "fail":
      if (status === "PAYMENT_PENDING" && order.payment === payment) return "appended"
      return status === "FAILED" && order.payment === payment ? "nothing" : "rejected"
    case "cancel":
      if (status === "CREATED") return "appended"
      return status === "CANCELLED" ? "nothing" : "rejected"
    case "refund":
      if (status === undefined) return "rejected"
      if (known !== undefined) return known.minor === refund.minor ? "nothing" : "rejected"
      if (status !== "PAID" && status !== "PARTIALLY_REFUNDED") return "rejected"
      return refund.minor <= CHARGE - sum(order, "pending", "succeeded") ? "appended" : "rejected"
    case "refundSucceed":
      return known?.status === "pending" ? "appended" : known?.status === "succeeded" ? "nothing" : "rejected"
    case "refundFail":
      return known?.status === "pending" ? "appended" : known?.status === "failed" ? "nothing" : "rejected"
  }
}

const after = (kind: Kind, order: ModelOrder, payment: string, refund: { id: string; minor: bigint }): ModelOrder => {
  const withRefund = (status: "pending" | "succeeded" | "failed") =>
    new Map([...order.refunds, [refund.id, { minor: order.refunds.get(refund.id)?.minor ?? refund.minor, status }]])
  switch (kind) {
    case "place":
      return { status: "CREATED", payment: undefined, refunds: new Map() }
    case "start":
      return { ...order, status: "PAYMENT_PENDING", payment }
    case "succeed":
      return { ...order, status: "PAID" }
    case "fail":
      return { ...order, status: "FAILED" }
    case "cancel":
      return { ...order, status: "CANCELLED" }
    case "refund":
      return { ...order, refunds: withRefund("pending") }
    case "refundSucceed": {
      const refunds = withRefund("succeeded")
      const refunded = [...refunds.values()].reduce((total, r) => r.status === "succeeded" ? total + r.minor : total, 0n)
      return { ...order, refunds, status: refunded >= CHARGE ? "REFUNDED" : "PARTIALLY_REFUNDED" }
    }
    case "refundFail":
      return { ...order, refunds: withRefund("failed") }
  }
}

class OrderCommandRun implements fc.AsyncCommand<Model, Real> {
  constructor(readonly kind: Kind, readonly order: number, readonly payment: PaymentId, readonly refundId: RefundId, readonly refundMinor: bigint) {}
  check = () => true
  async run(model: Model, real: Real) {
    const id = real.ids[this.order]!
    const refund = { id: this.refundId as string, minor: this.refundMinor }
    const command = commandOf(this.kind, id, this.payment, {
      refundId: this.refundId,
      amount: new Money({ minor: this.refundMinor, currency: "EUR" as Money["currency"] })
    })
    const result = await run(Effect.either(real.actors.execute(command)))
    const got: Outcome = Either.isLeft(result) ? "rejected" : result.right.events.length > 0 ? "appended" : "nothing"
    const state = model.orders[this.order]!
    const wanted = expect(this.kind, state, this.payment, refund)
    if (got !== wanted) throw new Error(`${this.toString()}: got ${got}, the model says ${wanted}`)
    if (got === "appended") model.orders[this.order] = after(this.kind, state, this.payment, refund)
    const recorded = await run(real.store.readStream(id))
    const versions = recorded.map((r) => r.version)
    if (versions.some((v, i) => v !== i + 1)) throw new Error(`versions ${versions.join(",")}`)
    const status = Either.isRight(result) ? result.right.order.status : undefined
    if (got !== "rejected" && status !== model.orders[this.order]!.status) {
      throw new Error(`${this.toString()}: order is ${status}, the model says ${model.orders[this.order]!.status}`)
    }
  }
  toString = () =>
    `${this.kind}(order ${this.order}${
      this.kind === "place" || this.kind === "cancel"
        ? ""
        : this.kind.startsWith("refund")
        ? `, refund ${this.refundId.slice(-1)} of ${this.refundMinor}`
        : `, ${this.payment.slice(-1)}`
    })`
}

const commandsArb = fc.commands(
  [
    fc.tuple(
      // refunds weighted up, one payment id mostly: paid orders with several refunds in flight are common
      fc.constantFrom<Kind>("place", "start", "succeed", "succeed", "fail", "cancel", "refund", "refund", "refund", "refundSucceed", "refundFail"),
      fc.integer({ min: 0, max: 2 }),
      fc.constantFrom(paymentIds[0]!, paymentIds[0]!, paymentIds[0]!, paymentIds[1]!),
      fc.constantFrom(...refundIds),
      fc.constantFrom(10000n, 19999n, CHARGE)
    ).map(([kind, order, payment, refundId, minor]) => new OrderCommandRun(kind, order, payment, refundId, minor))
  ],
  { maxCommands: 40, size: "+1" }
)

for (const backend of ["memory", "postgres"] as Array<Backend>) {
  describe(`P2 model-based (${backend})`, () => {
    const stores = storesFor(backend, `props_model_${backend}`)
    afterAll(() => stores.dispose())

    it("actors + event store behave as the model, command by command", async () => {
      await fc.assert(
        fc.asyncProperty(commandsArb, async (commands) => {
          const setup = Effect.gen(function*() {
            const durable = yield* Layer.build(stores.fresh())
            const actors = Context.get(yield* Layer.build(Layer.fresh(OrderActors.Default)).pipe(Effect.provide(durable)), OrderActors)
            return { actors, store: Context.get(durable, EventStore), ids: [0, 1, 2].map(() => uuidv7() as OrderId) }
          })
          await run(Effect.scoped(Effect.flatMap(setup, (real: Real) =>
            Effect.promise(() =>
              fc.asyncModelRun(() => ({ model: { orders: [0, 1, 2].map(() => ({ status: undefined, payment: undefined, refunds: new Map() })) }, real }), commands)
            )) as Effect.Effect<void, never, Scope.Scope>))
        }),
        params(backend)
      )
    }, 300_000)
  })
}
