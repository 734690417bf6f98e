/**
 * One failure model (issue 23), end to end on the real PostgreSQL and the real broker: a statement the
 * database refuses on every try (here a trigger that raises SQLSTATE 22023 for one user's orders) is a
 * permanent failure — the worker parks that one message, with the SQLSTATE in the dead letter's error, and
 * the others flow: every other order is PAID and the group's committed offsets reach the end of the topic.
 * (Before, any SqlError was "infrastructure" and its message was retried forever, holding its partition.)
 * The same refusal through HTTP is a 500 with the correlation id, never a 503.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import type { OrderId } from "../src/domain/Order.js"
import { Kafka } from "../src/kafka/Kafka.js"
import { PaymentProcessor } from "../src/payment/PaymentProcess.js"
import { admin, settle, stateOf, test } from "./support/payments.js"
import { call, postJson } from "./support/TestApp.js"
import { TestSystem } from "./support/TestSystem.js"
import { refuseRows } from "./support/refuseRows.js"
import { waitFor } from "./support/waitFor.js"

const poisonedUser = "0badc0de-0000-4000-8000-000000000022"
const healthyUser = "8f0e2d0a-3f5e-4a7b-9c1d-2e3f4a5b6c7d"

const placeFor = (userId: string) =>
  Effect.map(postJson("/orders", { userId, amount: "42.50", currency: "EUR" }), (r) => {
    assert.strictEqual(r.status, 201)
    return r.body.orderId as OrderId
  })

/** PostgreSQL refuses a PaymentRequested of the poisoned user's orders, on every try. */
const poison = refuseRows({
  name: "poisoned_payment",
  table: "events",
  on: "INSERT",
  when: "NEW.type = 'PaymentRequested'",
  condition: `EXISTS (SELECT 1 FROM events WHERE stream_id = NEW.stream_id AND type = 'OrderPlaced' AND data->>'userId' = '${poisonedUser}')`,
  sqlState: "22023",
  message: "poisoned order"
})

describe("a permanent database error in one message's handling", () => {
  layer(TestSystem("payments_permanent"), { excludeTestServices: true, timeout: "90 seconds" })((it) => {
    it.effect("parks that message with its SQLSTATE; the other orders are PAID and the commits move past it", () =>
      test(Effect.gen(function*() {
        yield* poison
        const kafka = yield* Kafka
        const group = (yield* PaymentProcessor).consumer
        // the poisoned order among healthy ones placed at the same time (their appends share batches)
        const ids = yield* Effect.all(
          [placeFor(poisonedUser), ...Array.from({ length: 12 }, () => placeFor(healthyUser))],
          { concurrency: "unbounded" }
        )
        const [poisoned, ...healthy] = ids
        for (const id of healthy) assert.strictEqual(yield* settle(id), "PAID")
        const parked = yield* waitFor(
          "the poisoned order's message parked",
          Effect.map(call("GET", "/admin/dead-letters?status=parked", { headers: admin }), (r) => r.body as Array<any>),
          (list) => list.some((d) => d.key === poisoned)
        )
        assert.deepStrictEqual(parked.map((d) => d.key), [poisoned])
        assert.match(parked[0].error, /SQLSTATE 22023/)
        assert.strictEqual(yield* stateOf(poisoned!), "CREATED")
        // the partition holding it is not held: every committed offset reaches the end of the topic
        yield* waitFor("committed offsets at the end of the topic", kafka.lag(group, kafka.topics.orderEvents), (lag) => lag === 0)
      })))

    it.effect("a transient database error (40001) in the same place is retried, not parked, and heals", () =>
      test(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS serialization_trouble (on_until timestamptz)`)
        yield* sql.unsafe(`DELETE FROM serialization_trouble`)
        yield* sql.unsafe(`INSERT INTO serialization_trouble VALUES (now() + interval '1 hour')`)
        const removeTrouble = yield* refuseRows({
          name: "troubled_payment",
          table: "events",
          on: "INSERT",
          when: "NEW.type = 'PaymentRequested'",
          condition: "EXISTS (SELECT 1 FROM serialization_trouble WHERE on_until > now())",
          sqlState: "40001",
          message: "could not serialize access"
        })
        const orderId = yield* placeFor(healthyUser)
        // retried meanwhile (MESSAGE_RETRY), neither parked nor lost
        yield* Effect.sleep("1500 millis")
        assert.strictEqual(yield* stateOf(orderId), "CREATED")
        const parked = yield* call("GET", "/admin/dead-letters?status=parked", { headers: admin })
        assert.isFalse((parked.body as Array<any>).some((d) => d.key === orderId))
        yield* sql.unsafe(`DELETE FROM serialization_trouble`)
        assert.strictEqual(yield* settle(orderId), "PAID")
        yield* removeTrouble
      })))

    it.effect("over HTTP the refusal is a 500 with the correlation id, logged; never a 503", () =>
      Effect.gen(function*() {
        yield* poison
        const orderId = yield* placeFor(poisonedUser)
        // a cancel appends OrderCancelled: refuse that too, then ask for it
        const sql = yield* SqlClient.SqlClient
        yield* sql.unsafe(`
          CREATE OR REPLACE TRIGGER poisoned_cancel BEFORE INSERT ON events FOR EACH ROW
          WHEN (NEW.type = 'OrderCancelled') EXECUTE FUNCTION poisoned_payment()`)
        const reply = yield* call("POST", `/orders/${orderId}/cancel`, { headers: { "x-request-id": "perm-err-1" } })
        assert.strictEqual(reply.status, 500)
        assert.strictEqual(reply.body._tag, "InternalError")
        assert.strictEqual(reply.body.correlationId, "perm-err-1")
        assert.isNull(reply.headers["retry-after"] ?? null)
        yield* sql.unsafe(`DROP TRIGGER poisoned_cancel ON events`)
      }).pipe(Effect.orDie))
  })
})
