/**
 * Helpers of the payments end-to-end tests (payments*.test.ts) on a TestSystem: place an order over HTTP,
 * wait for it to settle, count its charges and the parked dead letters, steer the provider simulator.
 */
import { SqlClient } from "@effect/sql"
import { assert } from "@effect/vitest"
import { Effect, Ref } from "effect"
import type { OrderId } from "../../src/domain/Order.js"
import { PaymentSimulator, type SimulatorSettings } from "../../src/simulator/PaymentSimulator.js"
import { checkStoredOrder } from "./invariants.js"
import { adminToken, call, postJson } from "./TestApp.js"
import { waitFor } from "./waitFor.js"

const body = { userId: "8f0e2d0a-3f5e-4a7b-9c1d-2e3f4a5b6c7d", amount: "42.50", currency: "EUR" }

export const place = Effect.map(postJson("/orders", body), (r) => {
  assert.strictEqual(r.status, 201)
  return r.body.orderId as OrderId
})

export const stateOf = (orderId: string) => Effect.map(call("GET", `/orders/${orderId}`), (r) => r.body.state as string)

export const settle = (orderId: string) => waitFor(`order ${orderId} settled`, stateOf(orderId), (s) => s === "PAID" || s === "FAILED")

export const charges = (orderId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ n: number }>`SELECT count(*)::int AS n FROM provider_charges WHERE order_id = ${orderId}`).pipe(
    Effect.map((rows) => rows[0]!.n),
    Effect.orDie
  )

export const deadLetterCount = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ n: number }>`SELECT count(*)::int AS n FROM dead_letters WHERE status = 'parked'`).pipe(
  Effect.map((rows) => rows[0]!.n),
  Effect.orDie
)

/** Change the simulator's failure modes for the rest of the current test (reset when the test ends). */
export const provider = (change: Partial<SimulatorSettings>) =>
  Effect.flatMap(PaymentSimulator, (s) => Ref.update(s.settings, (current) => ({ ...current, ...change })))

export const healthyProvider = provider({ declineRate: 0, transientErrorRate: 0, outage: false, latencyMs: 0 })

/** Each test starts with a healthy provider, whatever the test before it left. */
export const test = <A, E, R>(body: Effect.Effect<A, E, R>) => Effect.zipRight(healthyProvider, body)

export const assertInvariants = (orderId: string) =>
  Effect.gen(function*() {
    const { violations } = yield* checkStoredOrder(orderId)
    assert.deepStrictEqual(violations, [])
  })

/** Wait until the relay has nothing left to publish, so the next batch holds only what the test writes next. */
export const outboxDrained = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  waitFor(
    "outbox drained",
    sql<{ n: number }>`SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL`.pipe(
      Effect.map((rows) => rows[0]!.n),
      Effect.orDie
    ),
    (n) => n === 0
  ))

export const admin = { authorization: `Bearer ${adminToken}` }
