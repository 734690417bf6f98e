/**
 * Refunds racing across two api processes (issue 21): two real api processes (`node --import tsx src/main.ts
 * api`) on one database, each with its own order actors, take refund requests for the same paid order at the
 * same moment. Whatever the interleaving, the refunds never add up above the charge: of two refunds of 30.00 on
 * a 42.50 order exactly one is accepted (202) and the other refused (422 RefundRefused) — the append's version
 * check makes the second process decide again on the first one's pending refund. The same Idempotency-Key sent
 * to both at once is one refund, answered the same by both.
 */
import type { SqlClient } from "@effect/sql"
import { afterAll, assert, describe, inject, it } from "@effect/vitest"
import { Effect, Layer, ManagedRuntime } from "effect"
import { OrderActors } from "../src/actor/OrderActors.js"
import type { OrderId, PaymentId } from "../src/domain/Order.js"
import { EventStore } from "../src/eventstore/EventStore.js"
import { LoggingLive } from "../src/observability/Logging.js"
import { PgStores } from "../src/Stores.js"
import { cmd, eur, newId, newOrderId } from "./support/fixtures.js"
import { freePort, Processes } from "./support/Processes.js"
import { TestDatabase, testDatabaseUrl } from "./support/TestDatabase.js"
import { suiteId } from "./support/TestKafka.js"

// a cold tsx start of the whole program on a shared 2-core machine (test/support/WorkerSystem.ts)
const STARTUP_MS = 120_000

const procs = new Processes()
const runtimes: Array<ManagedRuntime.ManagedRuntime<unknown, never>> = []
afterAll(async () => {
  await procs.killAll()
  for (const r of runtimes) await r.dispose()
})

const post = async (base: string, path: string, body: unknown, headers: Record<string, string> = {}) => {
  const response = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body)
  })
  return { status: response.status, body: await response.json() as any }
}

describe("refunds across two api processes", () => {
  it("two refunds racing to exceed the charge: one accepted, one refused; one key at both: one refund", async () => {
    const id = suiteId("refunds-procs")
    const url = testDatabaseUrl("refunds_procs")
    const runtime = ManagedRuntime.make(
      Layer.mergeAll(OrderActors.Default).pipe(
        Layer.provideMerge(PgStores),
        Layer.provideMerge(TestDatabase("refunds_procs", url) as Layer.Layer<SqlClient.SqlClient>),
        Layer.provide(LoggingLive)
      )
    )
    runtimes.push(runtime as ManagedRuntime.ManagedRuntime<unknown, never>)
    /** A paid order of 42.50 EUR, written by this test's own actors. */
    const paidOrder = () =>
      runtime.runPromise(Effect.gen(function*() {
        const actors = yield* OrderActors
        const orderId = newOrderId()
        const payment = newId<PaymentId>()
        yield* actors.execute(cmd.place(orderId, eur("42.50")))
        yield* actors.execute(cmd.start(payment, orderId))
        yield* actors.execute(cmd.succeed(payment, orderId))
        return orderId
      }).pipe(Effect.orDie))
    const refundsInLog = (orderId: OrderId) =>
      runtime.runPromise(Effect.map(Effect.flatMap(EventStore, (store) => store.readStream(orderId)), (events) =>
        events.filter((e) => e.event._tag === "RefundRequested").length).pipe(Effect.orDie))
    await paidOrder() // migrated, as a deployment's `migrate` step does, before the processes start

    const ports = [await freePort(), await freePort()]
    const apis = ports.map((port, i) =>
      procs.spawn(`api${i + 1}`, "api", {
        DATABASE_URL: url,
        DATABASE_POOL_SIZE: "4",
        KAFKA_BROKERS: inject("kafkaBrokers"),
        KAFKA_TOPIC_PREFIX: `test.${id}.`,
        PORT: String(port),
        HOST: "127.0.0.1",
        ADMIN_TOKEN: "test-admin-token",
        LOG_LEVEL: "Info"
      })
    )
    await Promise.all(apis.map((api) => api.waitForLine("the api STARTUP line", (l) => l.type === "STARTUP" && l.role === "api", STARTUP_MS)))
    const [one, two] = ports.map((port) => `http://127.0.0.1:${port}`) as [string, string]

    for (let round = 0; round < 5; round++) {
      const orderId = await paidOrder()
      // both processes know the order (warm caches at PAID), then both refund 30.00 at once
      await Promise.all([one, two].map((base) => fetch(`${base}/orders/${orderId}`)))
      const answers = await Promise.all([one, two].map((base) => post(base, `/orders/${orderId}/refunds`, { amount: "30.00" })))
      const statuses = answers.map((a) => a.status).sort()
      assert.deepStrictEqual(statuses, [202, 422], JSON.stringify(answers))
      assert.deepInclude(answers.find((a) => a.status === 422)!.body, { _tag: "RefundRefused", code: "amount" })
      assert.strictEqual(await refundsInLog(orderId), 1)
      // what is left (12.50) is still refundable, from either process
      assert.strictEqual((await post(round % 2 === 0 ? one : two, `/orders/${orderId}/refunds`, { amount: "12.50" })).status, 202)
      assert.strictEqual((await post(round % 2 === 0 ? two : one, `/orders/${orderId}/refunds`, { amount: "0.01" })).status, 422)
    }

    // one Idempotency-Key sent to both processes at once: one refund, the same answer from both
    const orderId = await paidOrder()
    const keyed = await Promise.all([one, two].map((base) =>
      post(base, `/orders/${orderId}/refunds`, { amount: "10.00" }, { "idempotency-key": "both-at-once" })))
    assert.deepStrictEqual(keyed.map((a) => a.status), [202, 202], JSON.stringify(keyed))
    assert.strictEqual(keyed[0]!.body.refundId, keyed[1]!.body.refundId)
    assert.strictEqual(await refundsInLog(orderId as OrderId), 1)
  }, 240_000)
})
