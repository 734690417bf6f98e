/**
 * Readiness with the broker paused (issue 23 item 5): a broker that answers nothing (SIGSTOP) makes a worker's
 * /health/ready 503 with its `broker` check failing, each answer within 1 s; the api, which needs the broker
 * for /metrics only, reports it failing and stays ready; both are ready again once it answers. Uses a broker of
 * its own (KAFKA_PORT 19592) so other suites keep theirs.
 */
import { afterAll, afterEach, assert, describe, it } from "vitest"
import { databaseUrl } from "../src/Config.js"
import { ownBroker } from "./support/OwnBroker.js"
import { pollUntil, Processes, sleep } from "./support/Processes.js"

const broker = ownBroker("19592")
const brokers = broker.start()
const processes = new Processes()
const run = `${Date.now()}`
afterEach(broker.resume)
afterAll(async () => {
  await processes.killAll()
  broker.stop()
})

interface Answer {
  readonly ms: number
  readonly status: number
  readonly body: { status: string; checks: Record<string, { ok: boolean; required: boolean; reason?: string }> }
}

const ready = async (base: string): Promise<Answer> => {
  const started = Date.now()
  const response = await fetch(`${base}/health/ready`, { signal: AbortSignal.timeout(10_000) })
  const body = await response.json() as Answer["body"]
  return { ms: Date.now() - started, status: response.status, body }
}

const start = async (role: string) => {
  const url = new URL(databaseUrl())
  url.pathname = `/readiness_broker_${role}_${run}`
  const proc = processes.spawn(role, role, {
    DATABASE_URL: url.toString(),
    KAFKA_BROKERS: brokers,
    KAFKA_TOPIC_PREFIX: `readiness-${run}.`,
    PAYMENT_WORKER_GROUP: `readiness-${run}`,
    PAYMENT_PROVIDER_URL: "http://127.0.0.1:1",
    PORT: "0",
    OPS_PORT: "0",
    LOG_LEVEL: "Info"
  })
  const listening = await proc.waitForLine("the address", (l) => l.type === "STARTUP" && typeof l.address === "string", 120_000)
  return String(listening.line.address).replace("0.0.0.0", "127.0.0.1")
}

/** Every answer within 1 s, until `until` holds (or `timeoutMs`). */
const answersUntil = async (base: string, until: (a: Answer) => boolean, timeoutMs: number) => {
  const answers: Array<Answer> = []
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    const answer = await ready(base)
    answers.push(answer)
    assert.isAtMost(answer.ms, 1_000, JSON.stringify(answer))
    if (until(answer)) return answer
    await sleep(250)
  }
  assert.fail(`not within ${timeoutMs} ms: ${JSON.stringify(answers.slice(-3))}`)
}

describe("readiness and a paused broker", () => {
  it("the worker is 503 with its broker check failing, each answer within 1 s; the api reports it and stays ready", async () => {
    const [worker, api] = await Promise.all([start("worker"), start("api")])
    await pollUntil("the worker ready", () => ready(worker), (a) => a.status === 200, 90_000, 250)
    await pollUntil("the api ready", () => ready(api), (a) => a.status === 200, 90_000, 250)
    const pid = broker.pid()
    process.kill(pid, "SIGSTOP")
    try {
      const down = await answersUntil(worker, (a) => a.status === 503, 8_000)
      assert.strictEqual(down.body.status, "not_ready")
      assert.include(down.body.checks.broker, { ok: false, required: true })
      assert.include(down.body.checks.database, { ok: true })
      const apiDown = await answersUntil(api, (a) => a.body.checks.broker?.ok === false, 8_000)
      assert.strictEqual(apiDown.status, 200, JSON.stringify(apiDown))
      assert.include(apiDown.body.checks.broker, { ok: false, required: false })
    } finally {
      process.kill(pid, "SIGCONT")
    }
    await answersUntil(worker, (a) => a.status === 200, 60_000)
  }, 240_000)
})
