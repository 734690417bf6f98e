/**
 * Helpers of the worker-process tests (worker-processes*.test.ts): the roles as real, separate OS processes
 * (`node --import tsx src/main.ts <role>`) — payment-provider, api+relay and named worker processes on a fresh
 * database and the suite's own topics and group — with order placing, state and charge checks, the processes'
 * last lines on failure, phase timelines, and the partitions a worker holds. Each test file registers
 * `stopProcesses` after each test and `stopAll` after all of them.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Layer, ManagedRuntime } from "effect"
import { randomBytes } from "node:crypto"
import { assert, inject } from "vitest"
import { LoggingLive } from "../../src/observability/Logging.js"
import { freePort, Processes, type RoleProcess, sleep } from "./Processes.js"
import { TestDatabase, testDatabaseUrl } from "./TestDatabase.js"

export const SHUTDOWN_TIMEOUT_MS = 5_000
export const PARTITIONS = 6
// Process startup is most of these tests' time: `node --import tsx src/main.ts` costs ~7 s of CPU before the
// first line (measured), and 4-5 of them start at once on a shared 2-core machine (60-80 s at load 30; the
// rest of each test takes 30-40 s). Bounds are generous for that; they are not speed assertions.
export const STARTUP_MS = 120_000
export const TEST_MS = 210_000

const procs = new Processes()
const databases: Array<ManagedRuntime.ManagedRuntime<SqlClient.SqlClient, never>> = []

export const stopProcesses = async () => {
  await procs.killAll()
}
export const stopAll = async () => {
  await procs.killAll()
  // drops the databases (WITH FORCE), after the processes using them are gone
  for (const db of databases) await db.dispose()
}

const body = { userId: "8f0e2d0a-3f5e-4a7b-9c1d-2e3f4a5b6c7d", amount: "10.00", currency: "EUR" }

export interface System {
  readonly sql: <A extends object>(f: (sql: SqlClient.SqlClient) => Effect.Effect<ReadonlyArray<A>, unknown>) => Promise<ReadonlyArray<A>>
  readonly apiUrl: string
  readonly providerUrl: string
  /** The api+relay process. */
  readonly api: RoleProcess
  readonly workers: ReadonlyArray<RoleProcess>
  /** Start one more worker process. */
  readonly worker: (name: string) => RoleProcess
  /** Start a process of any roles on the system's database, broker and topics (`env` on top). */
  readonly spawn: (name: string, roles: string, env?: Record<string, string>) => RoleProcess
  readonly placeOrder: () => Promise<string>
  readonly states: (ids: ReadonlyArray<string>) => Promise<Record<string, number>>
  readonly setOutage: (outage: boolean) => Promise<void>
}

/** A fresh migrated database, then the provider, api+relay and the named worker processes, started; on the
 * broker globalSetup started, or `brokers` (a test's own: test/support/OwnBroker.ts). */
export const startSystem = async (
  suite: string,
  workerNames: ReadonlyArray<string>,
  workerEnv: Record<string, string>,
  brokers: string = inject("kafkaBrokers")
): Promise<System> => {
  const id = `${suite}_${randomBytes(3).toString("hex")}`
  const url = testDatabaseUrl(suite)
  // migrated here, once, before any process starts: the roles would otherwise race to create and migrate it
  const db = ManagedRuntime.make(TestDatabase(suite, url).pipe(Layer.provide(LoggingLive)))
  databases.push(db)
  await db.runPromise(Effect.void)
  const sql: System["sql"] = (f) => db.runPromise(Effect.flatMap(SqlClient.SqlClient, f).pipe(Effect.orDie))

  const [apiPort, providerPort] = [await freePort(), await freePort()]
  const providerUrl = `http://127.0.0.1:${providerPort}`
  const common = {
    DATABASE_URL: url,
    DATABASE_POOL_SIZE: "5",
    KAFKA_BROKERS: brokers,
    KAFKA_TOPIC_PREFIX: `test.${id}.`,
    KAFKA_PARTITIONS: String(PARTITIONS),
    PAYMENT_WORKER_GROUP: `worker-${id}`,
    LOG_LEVEL: "Info",
    SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS)
  }
  const provider = procs.spawn("payment-provider", "payment-provider", {
    ...common,
    PROVIDER_PORT: String(providerPort),
    PROVIDER_HOST: "127.0.0.1",
    PROVIDER_LATENCY_MS: "20"
  })
  const api = procs.spawn("api,relay", "api,relay", { ...common, PORT: String(apiPort), HOST: "127.0.0.1", RELAY_POLL_MS: "200" })
  const worker = (name: string) =>
    procs.spawn(name, "worker", {
      ...common,
      PAYMENT_PROVIDER_URL: providerUrl,
      // generous: a timeout is a provider failure, and on this loaded machine 2 s was seen to pass
      PAYMENT_TIMEOUT_MS: "10000",
      PAYMENT_QUICK_ATTEMPTS: "2",
      PAYMENT_RETRY_BASE_MS: "20",
      PAYMENT_RETRY_DELAY_MS: "200",
      PAYMENT_RETRY_MAX_DELAY_MS: "1000",
      // an outage of a test's length must never park a payment
      PAYMENT_MAX_ATTEMPTS: "1000",
      BREAKER_THRESHOLD: "3",
      BREAKER_COOLDOWN_MS: "500",
      RETRY_POLL_MS: "200",
      CONSUMER_COMMIT_INTERVAL_MS: "100",
      ...workerEnv
    })
  // all at once, as a deployment starts them (process startup is most of these tests' time on a loaded machine)
  const workers = workerNames.map(worker)
  await Promise.all([
    provider.waitForLine("provider STARTUP", (l) => l.type === "STARTUP" && l.role === "payment-provider", STARTUP_MS),
    api.waitForLine("api STARTUP", (l) => l.type === "STARTUP" && l.role === "api", STARTUP_MS),
    api.waitForLine("relay STARTUP", (l) => l.type === "STARTUP" && l.role === "relay", STARTUP_MS),
    ...workers.map((w) => w.waitForLine("worker STARTUP", (l) => l.type === "STARTUP" && l.role === "worker", STARTUP_MS))
  ])
  const apiUrl = `http://127.0.0.1:${apiPort}`
  return {
    sql,
    apiUrl,
    providerUrl,
    api,
    workers,
    worker,
    spawn: (name, roles, env = {}) => procs.spawn(name, roles, { ...common, ...env }),
    placeOrder: async () => {
      const response = await fetch(`${apiUrl}/orders`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body)
      })
      const reply = await response.json() as { orderId?: string }
      assert.strictEqual(response.status, 201, JSON.stringify(reply))
      return reply.orderId!
    },
    states: async (ids) => {
      const rows = await sql<{ status: string; n: number }>((s) =>
        s`SELECT status, count(*)::int AS n FROM orders WHERE order_id = ANY(${ids}::uuid[]) GROUP BY status`)
      return Object.fromEntries(rows.map((r) => [r.status, r.n]))
    },
    setOutage: async (outage) => {
      const response = await fetch(`${providerUrl}/control`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ outage })
      })
      const settings = await response.json() as { outage?: boolean }
      assert.strictEqual(response.status, 200)
      assert.strictEqual(settings.outage, outage)
    }
  }
}

/** SIGTERM: exit 0 within SHUTDOWN_TIMEOUT_MS (plus slack for a loaded machine), a SHUTDOWN line, no backstop. */
export const terminatesInTime = async (role: RoleProcess) => {
  const signalled = Date.now()
  role.child.kill("SIGTERM")
  const bound = SHUTDOWN_TIMEOUT_MS + 3_000
  const exit = await Promise.race([role.exited, sleep(bound).then(() => undefined)])
  assert.isDefined(exit, `still running ${bound} ms after SIGTERM`)
  assert.strictEqual(exit!.code, 0, `exit ${JSON.stringify(exit)}`)
  assert.isAtMost(exit!.at - signalled, bound)
  assert.strictEqual(role.ofType("SHUTDOWN_TIMEOUT").length, 0, "no step outlasted the deadline")
  assert.isAbove(role.ofType("SHUTDOWN").length, 0, "a SHUTDOWN line")
}

/** Place `n` orders, `concurrency` at a time. */
export const placeOrders = async (system: System, n: number, concurrency = 5) => {
  const ids: Array<string> = []
  for (let i = 0; i < n; i += concurrency) {
    ids.push(...await Promise.all(Array.from({ length: Math.min(concurrency, n - i) }, () => system.placeOrder())))
  }
  return ids
}

/** Every order PAID, and each with exactly one charge in the provider's ledger, a successful one. */
export const assertPaidOnceEach = async (system: System, ids: ReadonlyArray<string>) => {
  const states = await system.states(ids)
  assert.deepStrictEqual(states, { PAID: ids.length })
  const charges = await system.sql<{ order_id: string; total: number; succeeded: number }>((s) =>
    s`SELECT order_id::text, count(*)::int AS total, count(*) FILTER (WHERE outcome = 'succeeded')::int AS succeeded
      FROM provider_charges WHERE order_id = ANY(${ids}::uuid[]) GROUP BY order_id`)
  assert.strictEqual(charges.length, ids.length, "every order has a charge")
  const wrong = charges.filter((c) => c.total !== 1 || c.succeeded !== 1)
  assert.deepStrictEqual(wrong, [], "exactly one charge per order, and it succeeded")
}

/** On failure, the processes' last lines go into the error: what a failure on a loaded machine needs. */
export const withTails = async (run: () => Promise<void>) => {
  try {
    await run()
  } catch (e) {
    if (e instanceof Error) e.message = `${e.message}\n${procs.tails()}`
    throw e
  }
}

/** Phase times of a test, printed at its end: where a slow run on a loaded machine spent its time. */
export const timeline = (test: string) => {
  const start = Date.now()
  const marks: Record<string, number> = {}
  return {
    mark: (what: string) => void (marks[what] = Date.now() - start),
    print: () => console.log(JSON.stringify({ test, phasesMs: marks }))
  }
}

/** The partitions of a REBALANCE "joined" line. */
export const partitionsOf = (line: { readonly [field: string]: unknown }) =>
  typeof line.partitions === "string" && line.partitions !== "" ? line.partitions.split(",") : []

/** The partitions a worker holds: those of its last "joined" line. */
export const held = (worker: RoleProcess) => {
  const joined = worker.ofType("REBALANCE").filter((c) => c.line.phase === "joined")
  return joined.length === 0 ? [] : partitionsOf(joined[joined.length - 1]!.line)
}
