/**
 * A separate writer process for the cross-process concurrency test: its own pool and its own order actors,
 * running `count` commands drawn from `seed` concurrently against each given order. Prints a JSON summary.
 * Usage: hammer.ts <databaseUrl> <count> <seed> <orderId>...
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import { PgStores } from "../../src/Stores.js"
import { OrderActors } from "../../src/actor/OrderActors.js"
import type { OrderId } from "../../src/domain/Order.js"
import { sampleCommands } from "./fixtures.js"

const [url, count, seed, ...orders] = process.argv.slice(2)

const program = Effect.gen(function*() {
  const actors = yield* OrderActors
  const outcomes: Record<string, number> = {}
  yield* Effect.forEach(
    orders.flatMap((orderId, i) => sampleCommands(orderId as OrderId, Number(count), Number(seed) * 1000 + i)),
    (command) =>
      actors.execute(command).pipe(
        Effect.match({ onFailure: (e) => e._tag, onSuccess: (r) => (r.events.length > 0 ? "appended" : "nothing") }),
        Effect.map((tag) => void (outcomes[tag] = (outcomes[tag] ?? 0) + 1))
      ),
    { concurrency: "unbounded" }
  )
  process.stdout.write(JSON.stringify(outcomes) + "\n")
})

Effect.runPromise(
  program.pipe(
    Effect.provide(OrderActors.Default.pipe(Layer.provideMerge(PgStores), Layer.provide(PgClient.layer({ url: Redacted.make(url!) }))))
  )
).catch((e) => {
  console.error(e)
  process.exit(1)
})
