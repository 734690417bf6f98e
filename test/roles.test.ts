/**
 * The roles of src/Roles.ts: which names a process accepts, that a process builds the infrastructure of
 * the roles it runs only (a projector or provider process never connects to Kafka), and that the health and
 * metrics endpoints are on OPS_PORT in a process without the api role, on the api's port otherwise (the
 * same endpoints from a real `relay,worker,projector` process: test/ops-endpoints.test.ts).
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { CrashPoints } from "../src/CrashPoints.js"
import { Kafka } from "../src/kafka/Kafka.js"
import { PaymentGateway } from "../src/payment/PaymentGateway.js"
import { StatsProjection } from "../src/projection/StatsProjection.js"
import { parseRoles, processLayer, roleNames } from "../src/Roles.js"
import { PaymentSimulator } from "../src/simulator/PaymentSimulator.js"
import { freePort } from "./support/Processes.js"
import { promtool } from "./support/promtool.js"
import { baseUrl, call, TestApp } from "./support/TestApp.js"
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

const get = (url: string) =>
  Effect.promise(() => fetch(url).then(async (r) => ({ status: r.status, text: await r.text() }), (e: unknown) => ({ status: 0, text: String(e) })))

// ports chosen before the layers are built (a port given is a port known; OPS_PORT=0 is logged instead)
const projectorOpsPort = await freePort()
const apiOpsPort = await freePort()

describe("a process of the projector and the provider", () => {
  layer(
    onTestDatabase(
      "roles",
      processLayer(["projector", "payment-provider"], untouchable).pipe(withTestConfig("roles", { OPS_PORT: String(projectorOpsPort) }))
    ),
    { excludeTestServices: true }
  )((it) => {
    it.effect("runs both roles without building Kafka, the gateway or crash points", () =>
      Effect.gen(function*() {
        const simulator = yield* PaymentSimulator
        assert.match(simulator.url, /^http:\/\/127\.0\.0\.1:\d+$/)
        const stats = yield* StatsProjection
        assert.strictEqual(yield* stats.lag, 0)
      }))

    it.effect("serves health and metrics on OPS_PORT, without a broker client (no consumer lag)", () =>
      Effect.gen(function*() {
        const ops = `http://127.0.0.1:${projectorOpsPort}`
        assert.deepStrictEqual(yield* get(`${ops}/health/live`), { status: 200, text: JSON.stringify({ status: "ok" }) })
        // neither role uses the broker or a consumer: ready is the database's probe alone
        const ready = yield* get(`${ops}/health/ready`)
        assert.strictEqual(ready.status, 200, ready.text)
        const body = JSON.parse(ready.text)
        assert.strictEqual(body.status, "ready")
        assert.deepStrictEqual(Object.keys(body.checks), ["database"])
        assert.include(body.checks.database, { ok: true, required: true })
        assert.isAtMost(body.checks.database.ageMs, 3_000)
        const metrics = yield* get(`${ops}/metrics`)
        assert.strictEqual(metrics.status, 200)
        assert.deepStrictEqual(promtool(metrics.text), { status: 0, output: "" })
        assert.include(metrics.text, "\nprojection_lag_events{projection=\"stats\"} ")
        assert.notInclude(metrics.text, "consumer_lag_messages")
      }))
  })
})

describe("a process with the api role", () => {
  layer(TestApp("roles_api", { OPS_PORT: String(apiOpsPort) }), { excludeTestServices: true })((it) => {
    it.effect("serves health and metrics on its own port and opens no ops port", () =>
      Effect.gen(function*() {
        assert.strictEqual((yield* call("GET", "/health/ready")).status, 200)
        assert.strictEqual((yield* call("GET", "/metrics")).status, 200)
        assert.notInclude(yield* baseUrl, `:${apiOpsPort}`)
        const ops = yield* get(`http://127.0.0.1:${apiOpsPort}/health/live`)
        assert.strictEqual(ops.status, 0, `OPS_PORT ${apiOpsPort} answered ${ops.status} ${ops.text}`)
      }))
  })
})
