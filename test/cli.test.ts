/** The operator CLI as a user runs it (the bin, a real database): output, --json and exit codes. */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { OrderActors } from "../src/actor/OrderActors.js"
import { PgStores } from "../src/Stores.js"
import { cmd, newOrderId } from "./support/fixtures.js"
import { kafkaBrokers } from "./support/TestKafka.js"
import { onTestDatabase, testDatabaseUrl } from "./support/TestDatabase.js"

const url = testDatabaseUrl("cli")
const bin = fileURLToPath(new URL("../bin/orders-es", import.meta.url))

const cli = (...args: Array<string>) =>
  Effect.sync(() => {
    const run = spawnSync(bin, args, {
      encoding: "utf8",
      env: { ...process.env, DATABASE_URL: url, KAFKA_BROKERS: kafkaBrokers(), KAFKA_TOPIC_PREFIX: "test.cli.", LOG_LEVEL: "Warning" }
    })
    return { code: run.status, out: run.stdout, err: run.stderr }
  })

describe("operator CLI", () => {
  layer(onTestDatabase("cli", OrderActors.Default.pipe(Layer.provideMerge(PgStores)), url), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("projections status / verify / rebuild, orders show / events, dlq list; exit codes", () =>
      Effect.gen(function*() {
        const actors = yield* OrderActors
        const id = newOrderId()
        yield* actors.execute(cmd.place(id))
        yield* actors.execute(cmd.cancel(id))

        const help = yield* cli("--help")
        assert.strictEqual(help.code, 0)
        assert.include(help.out, "projections")

        const status = yield* cli("projections", "status", "--json")
        assert.strictEqual(status.code, 0, status.err)
        assert.include(JSON.parse(status.out), { events: 2, orders: 1, unpublished: 2 })

        assert.strictEqual((yield* cli("projections", "verify")).code, 0)
        const sql = yield* SqlClient.SqlClient
        yield* sql`UPDATE orders SET status = 'PAID' WHERE order_id = ${id}`
        const bad = yield* cli("projections", "verify", "--json")
        assert.strictEqual(bad.code, 1)
        assert.strictEqual(JSON.parse(bad.out).differences, 1)

        const rebuilt = yield* cli("projections", "rebuild", "--json")
        assert.strictEqual(rebuilt.code, 0, rebuilt.err)
        assert.include(JSON.parse(rebuilt.out), { events: 2, orders: 1 })
        assert.strictEqual((yield* cli("projections", "verify")).code, 0)

        const stats = yield* cli("projections", "rebuild-stats", "--json")
        assert.strictEqual(stats.code, 0, stats.err)
        assert.deepStrictEqual(
          JSON.parse(stats.out).ordersByState.filter((s: any) => s.orders !== "0"),
          [{ status: "CANCELLED", orders: "1" }]
        )

        const shown = yield* cli("orders", "show", id, "--json")
        assert.strictEqual(shown.code, 0)
        assert.strictEqual(JSON.parse(shown.out).state, "CANCELLED")
        const events = yield* cli("orders", "events", id, "--json")
        assert.deepStrictEqual(JSON.parse(events.out).map((e: any) => e.type), ["OrderPlaced", "OrderCancelled"])
        // the same view as GET /orders/:id/events (src/orders/Views.ts#toEventView)
        assert.deepStrictEqual(Object.keys(JSON.parse(events.out)[0]).sort(), [
          "data", "eventId", "metadata", "position", "recordedAt", "schemaVersion", "type", "version"
        ])
        assert.strictEqual((yield* cli("orders", "show", newOrderId())).code, 3)

        const dlq = yield* cli("dlq", "list", "--json")
        assert.strictEqual(dlq.code, 0, dlq.err)
        assert.deepStrictEqual(JSON.parse(dlq.out), [])
        assert.strictEqual((yield* cli("dlq", "replay", "12345")).code, 3)
        assert.notStrictEqual((yield* cli("projections", "nonsense")).code, 0)
      }), { timeout: 300_000 }) // 13 cold CLI starts (tsx): 65-95 s on a quiet machine, more under load
  })
})
