/**
 * `npm run bench:profile`: one layout at one fixed rate, for finding where an order's CPU goes (issue 24).
 * Starts the provider simulator and the app's processes (compiled dist/), sends PROFILE_RATE orders/s for
 * PROFILE_SECONDS after a warm-up, waits until they are PAID, and prints each process's CPU per order (from
 * /proc) and POST latency. With PROFILE_CPU=1 every app process runs under `node --cpu-prof`, and the profile's
 * self time is summed by where the code lives (our modules, effect, kafkajs, pg, node internals, GC) —
 * `bench/results/profiles/` keeps the .cpuprofile files for a closer look (Chrome DevTools, speedscope).
 *
 *   PROFILE_LAYOUT   a `|`-separated list of the processes' roles (default `api,relay,worker,projector`;
 *                    the split layout is `api|relay,worker,projector`, scale `api|api|relay,worker,projector|…`)
 *   PROFILE_ROOT     the checkout whose dist/ runs (default this one; build it first)
 *   PROFILE_NODE_FLAGS  node's flags for the app's processes (default as `npm start`'s:
 *                    `--max-old-space-size=256 --max-semi-space-size=32`)
 * Nothing here asserts a speed.
 */
import { readdirSync, rmSync } from "node:fs"
import pg from "pg"
import { summarizeProfile } from "./lib/cpuprofile.js"
import { dbUrl, log, orderBody, psql, root, round, sh, sleep } from "./lib/common.js"
import { runStep } from "./lib/loadgen.js"
import { type Server, startServer, stopServer } from "./lib/processes.js"
import { treeCpuSeconds } from "./lib/procstat.js"

const rate = Number(process.env.PROFILE_RATE ?? 150)
const seconds = Number(process.env.PROFILE_SECONDS ?? 20)
const layout = (process.env.PROFILE_LAYOUT ?? "api,relay,worker,projector").split("|")
const checkout = process.env.PROFILE_ROOT ?? root
const profiling = process.env.PROFILE_CPU === "1"
const profileDir = `${root}bench/results/profiles`
const nodeFlags = (process.env.PROFILE_NODE_FLAGS ?? "--max-old-space-size=256 --max-semi-space-size=32").split(" ").filter(Boolean)

const main = async () => {
  sh("postgres.sh")
  const brokers = sh("kafka.sh", "start")
  const database = "orders_bench_profile"
  if (process.env.PROFILE_KEEP_DATABASE !== "1") psql(dbUrl("postgres"), "-c", `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
  rmSync(profileDir, { recursive: true, force: true })
  const stamp = Date.now()
  const env = {
    DATABASE_URL: dbUrl(database),
    KAFKA_BROKERS: brokers,
    KAFKA_TOPIC_PREFIX: `profile-${stamp}-`,
    HOST: "127.0.0.1",
    PROVIDER_PORT: "3204",
    PAYMENT_PROVIDER_URL: "http://127.0.0.1:3204",
    PROVIDER_LATENCY_MS: "20",
    PAYMENT_WORKER_GROUP: `profile-worker-${stamp}`
  }
  const dist = `${checkout}/dist/main.js`
  const provider = await startServer("profile-provider", [dist, "payment-provider"], env, "http://127.0.0.1:3204/control")
  const servers: Array<Server & { roles: string }> = []
  const apiPorts: Array<number> = []
  for (const [i, roles] of layout.entries()) {
    const port = 3210 + i
    const hasApi = roles.split(",").includes("api")
    if (hasApi) apiPorts.push(port)
    const flags = [...nodeFlags, ...(profiling ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}/${i}`] : [])]
    const ready = hasApi ? `http://127.0.0.1:${port}/health/ready` : "http://127.0.0.1:3204/control"
    const server = await startServer(`profile-${i}`, [...flags, dist, roles], { ...env, PORT: String(port), OPS_PORT: String(3230 + i) }, ready)
    servers.push({ ...server, roles })
  }
  const pool = new pg.Pool({ connectionString: dbUrl(database), max: 2 })
  const paidCount = async () =>
    (await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM orders WHERE status = 'PAID'")).rows[0]!.n
  // each api process gets its share of the rate
  const load = (r: number, s: number) =>
    Promise.all(apiPorts.map((port) =>
      runStep({ url: `http://127.0.0.1:${port}/orders`, rate: r / apiPorts.length, seconds: s, body: orderBody, collect: false })
    ))
  // without a worker (the api role alone) nothing is paid: no wait
  const paying = layout.some((roles) => roles.split(",").includes("worker"))
  const drain = async (expected: number) => {
    const start = Date.now()
    if (!paying) return 0
    while (Date.now() - start < 120_000 && (await paidCount()) < expected) await sleep(200)
    return (Date.now() - start) / 1000
  }
  try {
    log(`warm-up: ${rate}/s for 5 s on ${layout.join(" | ")}`)
    const warm = await load(rate, 5)
    const warmOk = warm.reduce((n, r) => n + r.ok, 0)
    await drain(warmOk)
    const xacts = async () =>
      Number((await pool.query<{ n: string }>(
        "SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()"
      )).rows[0]!.n)
    const xactsBefore = await xacts()
    const before = servers.map((s) => treeCpuSeconds(s.child.pid!))
    const providerBefore = treeCpuSeconds(provider.child.pid!)
    log(`measuring: ${rate}/s for ${seconds} s`)
    const results = await load(rate, seconds)
    const ok = results.reduce((n, r) => n + r.ok, 0)
    const drainSeconds = await drain(warmOk + ok)
    const after = servers.map((s) => treeCpuSeconds(s.child.pid!))
    const paid = (await paidCount()) - warmOk
    // statistics reach pg_stat_database when a backend reports them (at most every second, and at idle)
    await sleep(1500)
    const transactionsPerOrder = round(((await xacts()) - xactsBefore) / ok, 2)
    const cpu = servers.map((s, i) => ({ roles: s.roles, msPerOrder: round(1000 * (after[i]! - before[i]!) / ok, 3) }))
    const total = round(cpu.reduce((n, c) => n + c.msPerOrder, 0), 3)
    console.log(JSON.stringify({
      layout: layout.join(" | "),
      rate,
      seconds,
      accepted: ok,
      paid,
      drainSeconds: round(drainSeconds, 1),
      postMs: results.map((r) => r.latencyMs),
      appCpuMsPerOrder: total,
      transactionsPerOrder,
      perProcess: cpu,
      providerCpuMsPerOrder: round(1000 * (treeCpuSeconds(provider.child.pid!) - providerBefore) / ok, 3)
    }, null, 2))
  } finally {
    for (const s of [...servers].reverse()) await stopServer(s)
    await stopServer(provider)
    await pool.end()
  }
  if (profiling) {
    for (const [i] of servers.entries()) {
      const dir = `${profileDir}/${i}`
      for (const f of readdirSync(dir).filter((n) => n.endsWith(".cpuprofile"))) {
        const { categories, files, functions } = summarizeProfile(`${dir}/${f}`)
        console.log(`\n== process ${i} (${layout[i]}): ${dir}/${f}\n-- self time by where the code lives\n${categories.join("\n")}\n-- by file\n${files.join("\n")}\n-- top functions (self)\n${functions.join("\n")}`)
      }
    }
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(e)
  process.exit(1)
})
