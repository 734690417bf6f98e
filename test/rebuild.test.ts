/**
 * Rebuilding the `orders` projection from the log: equals the live table after random histories, also while
 * writes continue; a row the log cannot produce is gone; a rebuild killed halfway, run again, is correct.
 * `verify` finds every difference between the live table and the fold of the log.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import { OrderActors } from "../src/actor/OrderActors.js"
import { PgStores } from "../src/Stores.js"
import { rebuildOrders, verifyOrders } from "../src/projection/Rebuild.js"
import { cmd, newOrderId, sampleCommands } from "./support/fixtures.js"
import { onTestDatabase } from "./support/TestDatabase.js"

const history = (orders: number, commandsPerOrder: number) =>
  Effect.gen(function*() {
    const actors = yield* OrderActors
    const ids = Array.from({ length: orders }, newOrderId)
    yield* Effect.forEach(ids, (id) => actors.execute(cmd.place(id)), { concurrency: 8 })
    yield* Effect.forEach(
      ids.flatMap((id, i) => sampleCommands(id, commandsPerOrder, i)),
      (c) => Effect.either(actors.execute(c)),
      { concurrency: 8 }
    )
    return ids
  })

const liveRows = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql`SELECT order_id, user_id, amount_minor, currency, status, payment_id, reason, version, created_at, updated_at
      FROM orders ORDER BY order_id`).pipe(Effect.orDie)

describe("projection rebuild", () => {
  layer(onTestDatabase("rebuild", OrderActors.Default.pipe(Layer.provideMerge(PgStores))), { excludeTestServices: true })((it) => {
    it.effect("after random histories the rebuilt table equals the live one row for row", () =>
      Effect.gen(function*() {
        yield* history(40, 4)
        const before = yield* liveRows
        assert.deepStrictEqual(yield* verifyOrders, [])
        const result = yield* rebuildOrders()
        assert.strictEqual(result.orders, before.length)
        assert.deepStrictEqual(yield* liveRows, before)
        assert.deepStrictEqual(yield* verifyOrders, [])
      }))

    it.effect("verify finds a planted row and a changed row; rebuild removes both", () =>
      Effect.gen(function*() {
        const [id] = yield* history(3, 2)
        const sql = yield* SqlClient.SqlClient
        const planted = newOrderId()
        yield* sql`INSERT INTO orders VALUES (${planted}, ${planted}, 100, 'EUR', 'PAID', NULL, NULL, 3, now(), now())`
        yield* sql`UPDATE orders SET status = 'PAID', version = 99 WHERE order_id = ${id!}`
        const differences = yield* verifyOrders
        assert.sameMembers(differences.map((d) => d.orderId), [planted, id])
        assert.isUndefined(differences.find((d) => d.orderId === planted)!.folded)
        yield* rebuildOrders()
        assert.deepStrictEqual(yield* verifyOrders, [])
        assert.lengthOf(yield* sql`SELECT 1 FROM orders WHERE order_id = ${planted}`, 0)
      }))

    it.effect("a rebuild killed halfway, run again, gives the correct table", () =>
      Effect.gen(function*() {
        yield* history(10, 3)
        const killed = yield* Effect.exit(rebuildOrders(() => Effect.die("killed")))
        assert.strictEqual(killed._tag, "Failure")
        const sql = yield* SqlClient.SqlClient
        // the half-built table is left behind, the live one untouched
        assert.lengthOf(yield* sql`SELECT 1 FROM pg_tables WHERE tablename = 'orders_rebuild'`, 1)
        assert.deepStrictEqual(yield* verifyOrders, [])
        yield* rebuildOrders()
        assert.lengthOf(yield* sql`SELECT 1 FROM pg_tables WHERE tablename = 'orders_rebuild'`, 0)
        assert.deepStrictEqual(yield* verifyOrders, [])
      }))

    it.effect("writes continue during the rebuild; afterwards the table still equals the fold", () =>
      Effect.gen(function*() {
        yield* history(30, 2)
        const writer = yield* Effect.fork(history(30, 3))
        yield* rebuildOrders()
        yield* Fiber.join(writer)
        assert.deepStrictEqual(yield* verifyOrders, [])
      }))
  })
})
