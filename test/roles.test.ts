/**
 * The roles of src/Roles.ts: which names a process accepts, and that a process builds the infrastructure of
 * the roles it runs only (a projector or provider process never connects to Kafka).
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { CrashPoints } from "../src/CrashPoints.js"
import { Kafka } from "../src/kafka/Kafka.js"
import { PaymentGateway } from "../src/payment/PaymentGateway.js"
import { StatsProjection } from "../src/projection/StatsProjection.js"
import { parseRoles, processLayer, roleNames } from "../src/Roles.js"
import { PaymentSimulator } from "../src/simulator/PaymentSimulator.js"
import { onTestDatabase } from "./support/TestDatabase.js"
import { withTestConfig } from "./support/TestSystem.js"

describe("role names", () => {
  it("all, a comma list (all within it stands for every role), duplicates once; anything else is refused", () => {
    assert.deepStrictEqual(parseRoles("all"), Option.some(roleNames))
    assert.deepStrictEqual(parseRoles("api,relay"), Option.some(["api", "relay"]))
    assert.deepStrictEqual(parseRoles(" worker , worker"), Option.some(["worker"]))
    assert.deepStrictEqual(parseRoles("all,api"), Option.some(roleNames))
    assert.isTrue(Option.isNone(parseRoles("")))
    assert.isTrue(Option.isNone(parseRoles("api,bogus")))
    assert.isTrue(Option.isNone(parseRoles("migrate")))
  })
})

/** Infrastructure that dies when built: a process that builds none of it may run without it. */
const untouchable = {
  kafka: Layer.effect(Kafka, Effect.dieMessage("Kafka was built")),
  paymentGateway: Layer.effect(PaymentGateway, Effect.dieMessage("the gateway was built")),
  crashPoints: Layer.effect(CrashPoints, Effect.dieMessage("crash points were built"))
}

describe("a process of the projector and the provider", () => {
  layer(
    onTestDatabase("roles", processLayer(["projector", "payment-provider"], untouchable).pipe(withTestConfig("roles"))),
    { excludeTestServices: true }
  )((it) => {
    it.effect("runs both roles without building Kafka, the gateway or crash points", () =>
      Effect.gen(function*() {
        const simulator = yield* PaymentSimulator
        assert.match(simulator.url, /^http:\/\/127\.0\.0\.1:\d+$/)
        const stats = yield* StatsProjection
        assert.strictEqual(yield* stats.lag, 0)
      }))
  })
})
