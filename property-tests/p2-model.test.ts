/**
 * P2 (model-based) — the order actors and the event store against a simple model, with fc.commands:
 * a plain map of status and payment id per order, and a transition table written independently of the
 * decider. Each command's outcome (appended / already satisfied / rejected) and the order's resulting state
 * must be the model's; versions stay 1..n. Runs on the in-memory and the PostgreSQL stores.
 * (Concurrent interleavings across two processes are P2 in p2-p3-p6-store.test.ts.)
 */
import { afterAll, describe, it } from "@effect/vitest"
import { Context, Effect, Either, Layer, type Scope } from "effect"
import { OrderActors } from "../src/actor/OrderActors.js"
import type { OrderId, PaymentId } from "../src/domain/Order.js"
import { EventStore } from "../src/eventstore/EventStore.js"
import { uuidv7 } from "../src/Ids.js"
import { type CommandKind as Kind, commandOf, paymentIds } from "../test/support/fixtures.js"
import { run, storesFor } from "./harness.js"
import { type Backend, fc, params } from "./support.js"

type Status = "CREATED" | "PAYMENT_PENDING" | "PAID" | "FAILED" | "CANCELLED"
type Outcome = "appended" | "nothing" | "rejected"

interface Model {
  orders: Array<{ status: Status | undefined; payment: string | undefined }>
}

interface Real {
  readonly actors: OrderActors
  readonly store: EventStore["Type"]
  readonly ids: ReadonlyArray<OrderId>
}


/** The model's transition table: what a command does to (status, payment), independent of the decider. */
const expect = (kind: Kind, order: Model["orders"][number], payment: string): Outcome => {
  const { status } = order
  switch (kind) {
    case "place":
      return status === undefined ? "appended" : "nothing"
    case "start":
      if (status === "CREATED") return "appended"
      return status === "PAYMENT_PENDING" && order.payment === payment ? "nothing" : "rejected"
    case "succeed":
      if (status === "PAYMENT_PENDING" && order.payment === payment) return "appended"
      return status === "PAID" && order.payment === payment ? "nothing" : "rejected"
    case "fail":
      if (status === "PAYMENT_PENDING" && order.payment === payment) return "appended"
      return status === "FAILED" && order.payment === payment ? "nothing" : "rejected"
    case "cancel":
      if (status === "CREATED") return "appended"
      return status === "CANCELLED" ? "nothing" : "rejected"
  }
}

const after = (kind: Kind, order: Model["orders"][number], payment: string) => {
  switch (kind) {
    case "place":
      return { status: "CREATED" as const, payment: undefined }
    case "start":
      return { status: "PAYMENT_PENDING" as const, payment }
    case "succeed":
      return { status: "PAID" as const, payment: order.payment }
    case "fail":
      return { status: "FAILED" as const, payment: order.payment }
    case "cancel":
      return { status: "CANCELLED" as const, payment: undefined }
  }
}

class OrderCommandRun implements fc.AsyncCommand<Model, Real> {
  constructor(readonly kind: Kind, readonly order: number, readonly payment: PaymentId) {}
  check = () => true
  async run(model: Model, real: Real) {
    const id = real.ids[this.order]!
    const command = commandOf(this.kind, id, this.payment)
    const result = await run(Effect.either(real.actors.execute(command)))
    const got: Outcome = Either.isLeft(result) ? "rejected" : result.right.events.length > 0 ? "appended" : "nothing"
    const state = model.orders[this.order]!
    const wanted = expect(this.kind, state, this.payment)
    if (got !== wanted) throw new Error(`${this.toString()}: got ${got}, the model says ${wanted}`)
    if (got === "appended") model.orders[this.order] = after(this.kind, state, this.payment)
    const recorded = await run(real.store.readStream(id))
    const versions = recorded.map((r) => r.version)
    if (versions.some((v, i) => v !== i + 1)) throw new Error(`versions ${versions.join(",")}`)
    const status = Either.isRight(result) ? result.right.order.status : undefined
    if (got !== "rejected" && status !== model.orders[this.order]!.status) {
      throw new Error(`${this.toString()}: order is ${status}, the model says ${model.orders[this.order]!.status}`)
    }
  }
  toString = () => `${this.kind}(order ${this.order}${this.kind === "place" || this.kind === "cancel" ? "" : `, ${this.payment.slice(-1)}`})`
}

const commandsArb = fc.commands(
  [
    fc.tuple(fc.constantFrom<Kind>("place", "start", "succeed", "fail", "cancel"), fc.integer({ min: 0, max: 2 }), fc.constantFrom(...paymentIds))
      .map(([kind, order, payment]) => new OrderCommandRun(kind, order, payment))
  ],
  { maxCommands: 25 }
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
              fc.asyncModelRun(() => ({ model: { orders: [0, 1, 2].map(() => ({ status: undefined, payment: undefined })) }, real }), commands)
            )) as Effect.Effect<void, never, Scope.Scope>))
        }),
        params(backend)
      )
    }, 300_000)
  })
}
