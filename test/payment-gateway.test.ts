/**
 * The HTTP payment gateway (src/payment/PaymentGateway.ts) against the provider simulator on a real
 * PostgreSQL ledger: `lookup` answers a key's stored result without charging, `undefined` for a key the
 * provider never charged, and fails as transient (PaymentUnavailable) while the provider is out — so a parked
 * payment is only ever settled by what the provider confirms.
 */
import { assert, describe, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Ref } from "effect"
import { randomUUID } from "node:crypto"
import { httpPaymentGateway } from "../src/payment/PaymentGateway.js"
import { PaymentSimulator, PaymentSimulatorLive } from "../src/simulator/PaymentSimulator.js"
import { onTestDatabase } from "./support/TestDatabase.js"

const Simulator = onTestDatabase(
  "payment_gateway",
  PaymentSimulatorLive.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([
    ["PROVIDER_PORT", "0"],
    ["PROVIDER_LATENCY_MS", "0"]
  ])))))
)

describe("payment gateway over HTTP", () => {
  layer(Simulator, { excludeTestServices: true })((it) => {
    it.effect("lookup: the stored result of a charged key, nothing for an unknown one, no charge either way", () =>
      Effect.gen(function*() {
        const simulator = yield* PaymentSimulator
        const gateway = httpPaymentGateway(simulator.url, 5000, 4)
        const key = randomUUID()
        assert.isUndefined(yield* gateway.lookup(key))
        const charged = yield* gateway.charge({ idempotencyKey: key, orderId: randomUUID(), amountMinor: 1234n, currency: "EUR" })
        assert.strictEqual(charged.outcome, "succeeded")
        assert.deepStrictEqual(yield* gateway.lookup(key), charged)
        // a key with characters a path must escape is a key like any other
        const odd = `a/b?c=d #${key}`
        assert.isUndefined(yield* gateway.lookup(odd))
        const other = yield* gateway.charge({ idempotencyKey: odd, orderId: randomUUID(), amountMinor: 1n, currency: "EUR" })
        assert.deepStrictEqual(yield* gateway.lookup(odd), other)
        const ledger = yield* Effect.promise(() => fetch(`${simulator.url}/charges`).then((r) => r.json() as Promise<Array<unknown>>))
        assert.strictEqual(ledger.length, 2, "lookups charge nothing")
      }))

    it.effect("lookup while the provider is out: PaymentUnavailable, never `no charge`", () =>
      Effect.gen(function*() {
        const simulator = yield* PaymentSimulator
        const gateway = httpPaymentGateway(simulator.url, 5000, 4)
        yield* Ref.update(simulator.settings, (s) => ({ ...s, outage: true }))
        const failed = yield* Effect.flip(gateway.lookup(randomUUID()))
        yield* Ref.update(simulator.settings, (s) => ({ ...s, outage: false }))
        assert.strictEqual(failed._tag, "PaymentUnavailable")
      }))
  })
})
