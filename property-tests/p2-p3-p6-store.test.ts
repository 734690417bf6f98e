/**
 * Event store and actor properties, each run against the in-memory and the PostgreSQL stores.
 *
 * P2 — concurrency (invariants 2, 3): random commands on a few orders, run concurrently through TWO actor
 *      systems (two "processes") over one store, in interleavings chosen by fc.scheduler → versions contiguous,
 *      and the log is a serial execution: each event is exactly what its command (event id = command id)
 *      decides on the state the log had just before it.
 * P3 — idempotent append (invariant 4): the same events (same ids) appended k times = appended once.
 * P6 — projection (invariant 7): after random histories, every `orders` row equals the fold of its stream, and
 *      (PostgreSQL) rebuilding the table from the log gives the same rows and a clean verify.
 */
import type { SqlClient } from "@effect/sql"
import { afterAll, describe, it } from "@effect/vitest"
import { Context, Effect, Either, Layer } from "effect"
import { OrderActors } from "../src/actor/OrderActors.js"
import type { Order, OrderCommand, OrderEvent, OrderId, OrderState } from "../src/domain/Order.js"
import { decide, evolve, fold } from "../src/domain/OrderDecider.js"
import { EventStore, OrderAfterAppend } from "../src/eventstore/EventStore.js"
import { OrdersReadModel } from "../src/projection/OrdersReadModel.js"
import { rebuildOrders, verifyOrders } from "../src/projection/Rebuild.js"
import { uuidv7 } from "../src/Ids.js"
import { checkStoredOrder } from "../test/support/invariants.js"
import { run, storesFor } from "./harness.js"
import { commandArb, orderIds } from "../test/support/fixtures.js"
import { type Backend, fc, params } from "./support.js"

/** Map the arbitrary's fixed order ids to fresh ones, so runs sharing a database never meet. */
const freshIds = (commands: ReadonlyArray<OrderCommand>): ReadonlyArray<OrderCommand> => {
  const ids = new Map(orderIds.map((id) => [id, uuidv7() as OrderId]))
  return commands.map((c) => Object.assign(Object.create(Object.getPrototypeOf(c)), c, { orderId: ids.get(c.orderId)! }))
}

const big = (_: string, v: unknown) => (typeof v === "bigint" ? v.toString() : v)

for (const backend of ["memory", "postgres"] as Array<Backend>) {
  describe(`store properties (${backend})`, () => {
    const stores = storesFor(backend, `props_store_${backend}`)
    afterAll(() => stores.dispose())

    it("P2 concurrent commands from two processes: contiguous versions, the log a serial execution", async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(commandArb(orderIds.slice(0, 2)), { minLength: 1, maxLength: 16 }), fc.scheduler(), async (raw, s) => {
          const commands = freshIds(raw)
          const program = Effect.scoped(Effect.gen(function*() {
            const durable = yield* Layer.build(stores.fresh())
            const one = Context.get(yield* Layer.build(Layer.fresh(OrderActors.Default)).pipe(Effect.provide(durable)), OrderActors)
            const two = Context.get(yield* Layer.build(Layer.fresh(OrderActors.Default)).pipe(Effect.provide(durable)), OrderActors)
            const runtime = yield* Effect.runtime<never>()
            // every command starts when the scheduler says so, on process one or two
            yield* Effect.promise(() =>
              Promise.all(commands.map((c, i) =>
                s.schedule(Promise.resolve(i), `${c._tag}#${i}`).then(() =>
                  Effect.runPromise(Effect.either((i % 2 === 0 ? one : two).execute(c)).pipe(Effect.provide(runtime)))
                )
              ))
            )
            const byId = new Map(commands.map((c) => [c.commandId as string, c]))
            const violations: Array<string> = []
            for (const orderId of new Set(commands.map((c) => c.orderId))) {
              const stored = yield* checkStoredOrder(orderId).pipe(Effect.provide(durable))
              violations.push(...stored.violations)
              let state: OrderState = undefined
              for (const event of stored.events) {
                const command = byId.get(event.eventId)
                const decided = command ? decide(command, state) : undefined
                if (!decided || Either.isLeft(decided) || JSON.stringify(decided.right, big) !== JSON.stringify([event], big)) {
                  violations.push(`${event._tag} ${event.eventId} is not what its command decides at that point`)
                }
                state = evolve(state, event)
              }
            }
            return violations
          }))
          // release scheduled tasks until the whole program is done (it schedules only after its setup)
          const violations = await s.waitFor(run(program))
          if (violations.length > 0) throw new Error(violations.join("\n"))
        }),
        params(backend)
      )
    }, 300_000)

    it("P3 appending the same events k times = once", async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(commandArb([orderIds[0]!]), { maxLength: 12 }),
          fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 6 }),
          async (raw, replays) => {
            const commands = freshIds(raw)
            // the events a serial run of the commands produces, and the chunk each command appended
            const chunks: Array<{ expected: number; events: ReadonlyArray<OrderEvent>; state: Order }> = []
            let state: OrderState = undefined
            for (const c of commands) {
              const d = decide(c, state)
              if (Either.isLeft(d) || d.right.length === 0) continue
              const next: Order = fold(d.right, state)!
              chunks.push({ expected: state?.version ?? 0, events: d.right, state: next })
              state = next
            }
            fc.pre(chunks.length > 0)
            const streamId = chunks[0]!.events[0]!.orderId
            const program = Effect.scoped(Effect.gen(function*() {
              const durable = yield* Layer.build(stores.fresh())
              const store = Context.get(durable, EventStore)
              const append = (chunk: (typeof chunks)[number]) =>
                store.append({ streamId, expectedVersion: chunk.expected, events: chunk.events, metadata: {}, inputs: Context.make(OrderAfterAppend, chunk.state) })
              for (const chunk of chunks) yield* append(chunk)
              for (const r of replays) {
                const again = yield* append(chunks[r % chunks.length]!)
                if (!again.duplicate) return "a re-append was not a no-op"
              }
              const log = yield* store.readStream(streamId)
              if (JSON.stringify(log.map((r) => r.event), big) !== JSON.stringify(chunks.flatMap((c) => c.events), big)) {
                return "the log differs from one append of each event"
              }
              return undefined
            }))
            const problem = await run(Effect.orDie(program))
            if (problem) throw new Error(problem)
          }
        ),
        params(backend)
      )
    }, 300_000)

    it("P6 after random histories the projection equals the fold of the log (and the rebuilt table)", async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(commandArb(), { maxLength: 25 }), async (raw) => {
          const commands = freshIds(raw)
          const program = Effect.scoped(Effect.gen(function*() {
            const durable = yield* Layer.build(stores.fresh())
            const actors = Context.get(yield* Layer.build(Layer.fresh(OrderActors.Default)).pipe(Effect.provide(durable)), OrderActors)
            for (const c of commands) yield* Effect.either(actors.execute(c))
            const violations: Array<string> = []
            const touched = [...new Set(commands.map((c) => c.orderId))]
            for (const orderId of touched) {
              violations.push(...(yield* checkStoredOrder(orderId).pipe(Effect.provide(durable))).violations)
            }
            if (backend === "postgres") {
              // = the rebuilt projection: rebuild the table from the log; the rows are the same, verify is clean
              const live = yield* Effect.forEach(touched, (id) => Context.get(durable, OrdersReadModel).get(id))
              yield* rebuildOrders().pipe(Effect.provide(durable as unknown as Context.Context<SqlClient.SqlClient>))
              const rebuilt = yield* Effect.forEach(touched, (id) => Context.get(durable, OrdersReadModel).get(id))
              if (JSON.stringify(rebuilt, big) !== JSON.stringify(live, big)) violations.push("rebuilt rows differ from live rows")
              const differences = yield* verifyOrders.pipe(Effect.provide(durable as unknown as Context.Context<SqlClient.SqlClient>))
              if (differences.length > 0) violations.push(`verify after rebuild: ${differences.length} differences`)
            }
            return violations
          }))
          const violations = await run(program)
          if (violations.length > 0) throw new Error(violations.join("\n"))
        }),
        params(backend)
      )
    }, 300_000)
  })
}
