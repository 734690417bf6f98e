/**
 * Concurrency: 50 concurrent commands on one order leave contiguous versions, a legal history and a
 * projection equal to the fold — within one process (actor mailbox) and across two processes (version check).
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { OrderActors } from "../src/actor/OrderActors.js"
import { PgStores } from "../src/Stores.js"
import { Layer } from "effect"
import { cmd, newOrderId, sampleCommands } from "./support/fixtures.js"
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
