/**
 * Reconciliation (issue 21) on the real PostgreSQL, the real broker and the provider simulator: clean after
 * payments and refunds; every kind of difference when the provider's ledger is tampered with behind our back
 * (a refund made directly at the simulator, a charge gone, an amount changed, refunds above a charge) — through
 * GET /admin/reconciliation, the CLI (exit 1) and the worker's periodic run (metric and log line).
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Metric } from "effect"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { uuidv4 } from "../src/Ids.js"
import { reconciliationDifferences } from "../src/payment/Reconciliation.js"
import { PaymentSimulator } from "../src/simulator/PaymentSimulator.js"
import { place, provider, settle, test } from "./support/payments.js"
import { adminToken, call, postJson } from "./support/TestApp.js"
import { kafkaBrokers } from "./support/TestKafka.js"
import { baseUrl } from "./support/TestDatabase.js"
import { TestSystem } from "./support/TestSystem.js"
import { waitFor } from "./support/waitFor.js"

const bin = fileURLToPath(new URL("../bin/orders-es", import.meta.url))
const started = new Date(Date.now() - 60_000).toISOString()

const reconcile = Effect.map(
  call("GET", `/admin/reconciliation?since=${encodeURIComponent(started)}`, { headers: { authorization: `Bearer ${adminToken}` } }),
  (r) => {
    assert.strictEqual(r.status, 200, JSON.stringify(r.body))
    return r.body as { checked: { ours: number; theirs: number }; differences: Array<{ kind: string; record: string; key: string; orderId: string }> }
  }
)

const paidAndRefunded = Effect.gen(function*() {
  const orderId = yield* place // 42.50 EUR
  assert.strictEqual(yield* settle(orderId), "PAID")
  const r = yield* postJson(`/orders/${orderId}/refunds`, { amount: "2.50" })
  assert.strictEqual(r.status, 202)
  yield* waitFor("refund settled", Effect.map(call("GET", `/orders/${orderId}/refunds/${r.body.refundId}`), (x) => x.body.status), (s) => s === "succeeded")
  return orderId
})

describe("reconciliation", () => {
  layer(TestSystem("reconcile", { env: { RECONCILE_GRACE_MS: "0", RECONCILE_INTERVAL_MS: "300" } }), { excludeTestServices: true, timeout: "90 seconds" })((it) => {
    it.effect("clean after payments and refunds; every kind of difference once the provider's ledger disagrees", () =>
      test(Effect.gen(function*() {
        const orders = yield* Effect.all([paidAndRefunded, paidAndRefunded, paidAndRefunded, paidAndRefunded])
        const clean = yield* reconcile
        assert.deepStrictEqual(clean.differences, [])
        assert.isAtLeast(clean.checked.theirs, 8)
        const sql = yield* SqlClient.SqlClient
        const simulator = yield* PaymentSimulator

        // in flight is not a difference: a refund the provider made whose answer we have not recorded yet (the
        // provider down for us, the refund retried durably)
        yield* provider({ outage: true })
        const inFlight = yield* postJson(`/orders/${orders[0]}/refunds`, { amount: "1.00" })
        assert.strictEqual(inFlight.status, 202)
        yield* waitFor("a durable refund retry", Effect.map(call("GET", `/orders/${orders[0]}/refunds/${inFlight.body.refundId}`), (r) => r.body.attempts), (n) => n >= 1)
        yield* sql`INSERT INTO provider_refunds (idempotency_key, refund_id, order_id, amount_minor, currency, outcome)
                   VALUES (${inFlight.body.refundId}, ${uuidv4()}, ${orders[0]!}, 100, 'EUR', 'succeeded')`
        assert.deepStrictEqual((yield* reconcile).differences, [])
        yield* provider({ outage: false })
        yield* waitFor("the in-flight refund recorded", Effect.map(call("GET", `/orders/${orders[0]}/refunds/${inFlight.body.refundId}`), (r) => r.body.status), (s) => s === "succeeded")
        assert.deepStrictEqual((yield* reconcile).differences, [])

        // a refund made at the provider directly, not through us: money we have no event for
        const direct = uuidv4()
        const made = yield* Effect.promise(() =>
          fetch(`${simulator.url}/refunds`, {
            method: "POST",
            headers: { "content-type": "application/json", "idempotency-key": direct },
            body: JSON.stringify({ orderId: orders[0], amountMinor: "100", currency: "EUR" })
          }).then((r) => r.status)
        )
        assert.strictEqual(made, 201)
        // a charge the provider lost; an amount that differs; refunds above a charge (written around the
        // simulator's own check, as a broken provider would)
        const [charge1] = yield* sql<{ idempotency_key: string }>`SELECT idempotency_key FROM provider_charges WHERE order_id = ${orders[1]!}`
        yield* sql`DELETE FROM provider_charges WHERE order_id = ${orders[1]!}`
        yield* sql`UPDATE provider_refunds SET amount_minor = 249 WHERE order_id = ${orders[2]!}`
        yield* sql`INSERT INTO provider_refunds (idempotency_key, refund_id, order_id, amount_minor, currency, outcome)
                   VALUES (${uuidv4()}, ${uuidv4()}, ${orders[3]!}, 5000, 'EUR', 'succeeded')`

        const report = yield* reconcile
        const kinds = report.differences.map((d) => `${d.kind}/${d.record}/${d.orderId === orders[0] ? 0 : d.orderId === orders[1] ? 1 : d.orderId === orders[2] ? 2 : 3}`).sort()
        assert.deepStrictEqual(kinds, [
          "amount_differs/refund/2",
          "missing_on_our_side/refund/0",
          "missing_on_our_side/refund/3",
          "missing_on_their_side/charge/1",
          "refunds_exceed_charge/order/3"
        ])
        assert.strictEqual(report.differences.find((d) => d.kind === "missing_on_their_side")!.key, charge1!.idempotency_key)
        assert.strictEqual(report.differences.find((d) => d.orderId === orders[0])!.key, direct)

        // the CLI: exit 1, the same differences as JSON
        const [{ name }] = (yield* sql<{ name: string }>`SELECT current_database() AS name`) as unknown as [{ name: string }]
        const databaseUrl = new URL(baseUrl)
        databaseUrl.pathname = `/${name}`
        // (not spawnSync: the simulator it asks runs on this process's event loop)
        const run = yield* Effect.async<{ status: number | null; stdout: string; stderr: string }>((resume) => {
          execFile(bin, ["reconcile", "--since", started, "--json"], {
            encoding: "utf8",
            env: {
            ...process.env,
            DATABASE_URL: databaseUrl.toString(),
            PAYMENT_PROVIDER_URL: simulator.url,
            RECONCILE_GRACE_MS: "0",
            KAFKA_BROKERS: kafkaBrokers(),
            LOG_LEVEL: "Warning"
          }
          }, (error, stdout, stderr) => resume(Effect.succeed({ status: error ? (error.code as number) : 0, stdout, stderr })))
        })
        assert.strictEqual(run.status, 1, run.stderr)
        assert.strictEqual(JSON.parse(run.stdout).differences?.length, 5, run.stdout + run.stderr)

        // the worker's periodic run: the gauge shows them (its window is RECONCILE_WINDOW, 48 h)
        yield* waitFor("the worker's reconciliation", Metric.value(reconciliationDifferences), (v) => v.value === 5)
        // unauthenticated: 401
        assert.strictEqual((yield* call("GET", "/admin/reconciliation")).status, 401)
        for (const since of ["yesterday", "0000-01-01T00:00:00Z", "-000001-01-01T00:00:00Z", "+010000-01-01T00:00:00Z"]) {
          const bad = yield* call("GET", `/admin/reconciliation?since=${encodeURIComponent(since)}`, { headers: { authorization: `Bearer ${adminToken}` } })
          assert.strictEqual(bad.status, 400, `${since}: ${JSON.stringify(bad.body)}`)
        }
      })))
  })
})
