/**
 * Concurrency: 50 concurrent commands on one order leave contiguous versions, a legal history and a
 * projection equal to the fold — within one process (actor mailbox) and across two processes (version check).
 */
import { assert, describe, layer } from "@effect/vitest"
import { Context, Effect } from "effect"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { OrderActors } from "../src/actor/OrderActors.js"
import { PgStores } from "../src/Stores.js"
import { Layer } from "effect"
import { RequestRefund } from "../src/domain/Order.js"
import { cmd, eur, newId, newOrderId, p1, r1, sampleCommands } from "./support/fixtures.js"
import { checkStoredOrder } from "./support/invariants.js"
import { onTestDatabase, testDatabaseUrl } from "./support/TestDatabase.js"

const url = testDatabaseUrl("concurrency")
const hammer = fileURLToPath(new URL("./support/hammer.ts", import.meta.url))

const placeOrders = (n: number) =>
  Effect.gen(function*() {
    const actors = yield* OrderActors
    const ids = Array.from({ length: n }, newOrderId)
    yield* Effect.forEach(ids, (id) => actors.execute(cmd.place(id)), { concurrency: "unbounded" })
    return ids
  })

const assertAllHold = (ids: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    for (const id of ids) {
      const { events, violations } = yield* checkStoredOrder(id)
      assert.deepStrictEqual(violations, [], id)
      assert.isAtLeast(events.length, 1)
    }
  })

describe("concurrent commands on one order", () => {
  layer(onTestDatabase("concurrency", OrderActors.Default.pipe(Layer.provideMerge(PgStores)), url), { excludeTestServices: true })((it) => {
    it.effect("50 concurrent commands per order, in one process", () =>
      Effect.gen(function*() {
        const actors = yield* OrderActors
        const ids = yield* placeOrders(10)
        const results = yield* Effect.forEach(
          ids.flatMap((id, i) => sampleCommands(id, 50, i)),
          (c) => Effect.either(actors.execute(c)),
          { concurrency: "unbounded" }
        )
        assert.isFalse(results.some((r) => r._tag === "Left" && r.left._tag === "ConcurrencyConflict"))
        yield* assertAllHold(ids)
      }))

    // Found by the chaos suite (CI, seed 3: `projections verify` 1 difference). A command's event id is derived
    // (a refund's from its Idempotency-Key, a payment result's from the payment) but its time is not: a retry
    // decided on a stale cache is answered "duplicate" by the store, and the actor used to cache ITS decision —
    // the refund at the retry's time, not the stored one's — and wrote the next append's `orders` row from it.
    it.effect("a retry answered 'duplicate' leaves the actor the log's state, not its own decision's", () =>
      Effect.scoped(Effect.gen(function*() {
        const a = yield* OrderActors
        const b = Context.get(yield* Layer.build(OrderActors.Default), OrderActors)
        const id = newOrderId()
        for (const c of [cmd.place(id), cmd.start(p1, id), cmd.succeed(p1, id)]) yield* a.execute(c)
        yield* b.execute(cmd.place(id)) // b reloads: its cache holds the PAID order (version 3)
        const refund = (commandId: string, refundId: string, at: string) =>
          new RequestRefund({ commandId: commandId as never, orderId: id, refundId: refundId as never, amount: eur("100.00"), reason: null, at: new Date(at) })
        const retried = newId<string>()
        yield* a.execute(refund(retried, r1, "2026-01-02T03:04:06.000Z"))
        // the same request again, on b's stale cache, a few seconds later: its event id is stored already
        const again = yield* b.execute(refund(retried, r1, "2026-01-02T03:04:09.000Z"))
        assert.strictEqual(again.order.refunds[0]?.requestedAt.toISOString(), "2026-01-02T03:04:06.000Z")
        yield* b.execute(refund(newId(), newId(), "2026-01-02T03:04:10.000Z"))
        const { violations } = yield* checkStoredOrder(id)
        assert.deepStrictEqual(violations, [])
      })))

    it.effect("50 concurrent commands per order, from two separate processes", () =>
      Effect.gen(function*() {
        const ids = yield* placeOrders(10)
        // each process draws its own commands (seed 1 and 2), so the two race on different commands
        const run = (seed: number) =>
          Effect.async<string>((resume) => {
            execFile(process.execPath, ["--import", "tsx", hammer, url, "25", String(seed), ...ids], (error, stdout, stderr) => {
              resume(error ? Effect.die(new Error(`${error.message}\n${stderr}`)) : Effect.succeed(stdout))
            })
          })
        const outputs = yield* Effect.all([run(1), run(2)], { concurrency: 2 })
        for (const output of outputs) {
          const outcomes = JSON.parse(output.trim().split("\n").pop()!) as Record<string, number>
          assert.strictEqual(Object.values(outcomes).reduce((a, b) => a + b, 0), 250, output)
          assert.notProperty(outcomes, "ConcurrencyConflict", output)
        }
        yield* assertAllHold(ids)
      }), { timeout: 120_000 })
  })
})
