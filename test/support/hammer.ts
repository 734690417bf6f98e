/**
 * A separate writer process for the cross-process concurrency test: its own pool and its own order actors,
 * running `count` random commands concurrently against each given order. Prints a JSON summary.
 * Usage: hammer.ts <databaseUrl> <count> <orderId>...
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import { PgStores } from "../../src/Roles.js"
import { OrderActors } from "../../src/actor/OrderActors.js"
import { randomCommand } from "./commands.js"

const [url, count, ...orders] = process.argv.slice(2)

const program = Effect.gen(function*() {
  const actors = yield* OrderActors
  const outcomes: Record<string, number> = {}
  yield* Effect.forEach(
    orders.flatMap((orderId) => Array.from({ length: Number(count) }, () => randomCommand(orderId))),
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
