/**
 * Every process can be probed and scraped (issue 22): a real process without the api role
 * (`node --import tsx src/main.ts relay,worker,projector`, the pipeline of a split deployment) serves
 * /health/live, /health/ready with its own roles' checks, and /metrics (clean under promtool) on OPS_PORT; with
 * OPS_PORT=0 it logs the address it got in a STARTUP line. (A process with the api role opens no ops port:
 * test/roles.test.ts.)
 */
import type { SqlClient } from "@effect/sql"
import { afterAll, assert, describe, inject, it } from "@effect/vitest"
import { Effect, Layer, ManagedRuntime } from "effect"
import { readFileSync } from "node:fs"
import { LoggingLive } from "../src/observability/Logging.js"
import { pollUntil, Processes } from "./support/Processes.js"
import { promtool } from "./support/promtool.js"
import { TestDatabase, testDatabaseUrl } from "./support/TestDatabase.js"
import { suiteId } from "./support/TestKafka.js"

// a cold tsx start of the whole program on a shared 2-core machine (test/support/WorkerSystem.ts)
const STARTUP_MS = 120_000

const procs = new Processes()
const databases: Array<ManagedRuntime.ManagedRuntime<SqlClient.SqlClient, never>> = []

afterAll(async () => {
  await procs.killAll()
  for (const db of databases) await db.dispose()
})

const alertExpressions = (): Array<string> =>
  [...readFileSync(new URL("../docs/prometheus-alerts.yml", import.meta.url), "utf8").matchAll(/^\s+expr: (.+)$/gm)].map(([, e]) => e!)

const get = async (url: string) => {
  const response = await fetch(url)
  return { status: response.status, text: await response.text() }
}

describe("the ops endpoints of a process without the api role", () => {
  it("relay,worker,projector with OPS_PORT=0: live, ready with the worker's consumer check, promtool-clean metrics", async () => {
    const id = suiteId("ops")
    const url = testDatabaseUrl("ops")
    // migrated before the process starts, as a deployment's `migrate` step does
    const db = ManagedRuntime.make(TestDatabase("ops", url).pipe(Layer.provide(LoggingLive)))
    databases.push(db)
    await db.runPromise(Effect.void)

    const pipeline = procs.spawn("pipeline", "relay,worker,projector", {
      DATABASE_URL: url,
      DATABASE_POOL_SIZE: "4",
      KAFKA_BROKERS: inject("kafkaBrokers"),
      KAFKA_TOPIC_PREFIX: `test.${id}.`,
      PAYMENT_WORKER_GROUP: `worker-${id}`,
      PAYMENT_PROVIDER_URL: "http://127.0.0.1:1",
      HOST: "127.0.0.1",
      OPS_PORT: "0",
      LOG_LEVEL: "Info"
    })
    try {
      const listening = await pipeline.waitForLine("the ops STARTUP line", (l) => l.type === "STARTUP" && l.role === "ops", STARTUP_MS)
      const address = String(listening.line.address)
      assert.match(address, /^http:\/\/127\.0\.0\.1:\d+$/)
      assert.notStrictEqual(address, "http://127.0.0.1:9464", "OPS_PORT=0 asks for any free port")

      const live = await get(`${address}/health/live`)
      assert.strictEqual(live.status, 200)
      assert.deepStrictEqual(JSON.parse(live.text), { status: "ok" })

      // ready once the worker's consumer has joined its group: the check of this process's own role
      const ready = await pollUntil("ready", () => get(`${address}/health/ready`), (r) => r.status === 200, STARTUP_MS, 500)
      const body = JSON.parse(ready.text)
      assert.strictEqual(body.status, "ready", ready.text)
      assert.deepStrictEqual(Object.keys(body.checks).sort(), ["broker", "consumer", "database"])
      for (const check of ["broker", "consumer", "database"]) assert.include(body.checks[check], { ok: true, required: true }, check)

      const metrics = await get(`${address}/metrics`)
      assert.strictEqual(metrics.status, 200)
      const checked = promtool(metrics.text)
      assert.strictEqual(checked.output, "", checked.output)
      assert.strictEqual(checked.status, 0)
      // the roles' own series, the scrape-time gauges (consumer lag: this process has a broker client) and the
      // ops requests themselves
      for (
        const series of [
          "relay_lag_seconds ", "outbox_unpublished_rows ", "projection_lag_events{projection=\"stats\"} ",
          `consumer_lag_messages{group="worker-${id}",topic="test.${id}.orders.events",partition="0"} `,
          "worker_message_retries_total ", "process_resident_memory_bytes ",
          "http_request_duration_seconds_count{method=\"GET\",route=\"/health/ready\",status=\"200\"} "
        ]
      ) assert.include(metrics.text, `\n${series}`)
      // every series the alerting rules (docs/prometheus-alerts.yml) query is served by this process, which runs
      // the roles they watch
      const families = new Set([...metrics.text.matchAll(/^# TYPE (\S+) /gm)].map(([, n]) => n!))
      const queried = alertExpressions().flatMap((e) => [...e.matchAll(/\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b(?!\s*\()/g)].map(([m]) => m))
      assert.isAbove(queried.length, 4)
      for (const m of queried) assert.isTrue(families.has(m), `an alert queries ${m}, which /metrics does not serve`)

      // no API on this process: the ops endpoints only, and no api STARTUP line
      assert.strictEqual((await get(`${address}/orders/00000000-0000-4000-8000-000000000000`)).status, 404)
      assert.isFalse(pipeline.ofType("STARTUP").some((c) => c.line.role === "api"))
    } catch (error) {
      throw new Error(`${String(error)}\n${pipeline.tail()}`)
    }
  }, STARTUP_MS * 2 + 30_000)
})
