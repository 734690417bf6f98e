/**
 * `npm run chaos`: the fault-injection suite (issue 11). For each schedule: a fresh database and topic prefix,
 * every role as its own process against the suite's own broker, bounded open-loop load, a seeded nemesis,
 * heal, a bounded quiescence wait, then the checker. Prints ok/fail per check and a summary table; writes a
 * report per schedule under test/chaos/out/. Exit 0 only when every check of every schedule is ok.
 *
 *   --schedules N   (CHAOS_SCHEDULES, default 1)      --seed S   (CHAOS_SEED, default: from the clock)
 *   --duration T    seconds of load and faults per schedule (CHAOS_DURATION, default 40)
 *   --rate R        orders/s (CHAOS_RATE, default 25)  --quiesce Q  liveness bound after healing (CHAOS_QUIESCE, 60)
 *   --faults a,b    fault families (CHAOS_FAULTS, default all): kill,pause,term,broker,pg,provider,duplicate,hostile
 *   --replay S      run exactly the schedule of seed S (same --duration and --faults give the same schedule)
 *   --plan          print the schedules the seeds give and exit
 *   --keep          keep every schedule's database (by default only failing schedules' databases are kept)
 *
 * Plain TypeScript on node:child_process rather than Effect: the runner is an imperative supervisor of OS
 * processes (spawn, signals, timers) and a checker of rows; it uses none of the app's layers, so it keeps
 * working whatever the app's internals become.
 */
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import pg from "pg"
import { databaseUrl as defaultDatabaseUrl } from "../../src/Config.js"
import { loadDatabase, runChecks } from "./checker.js"
import { Injector, kafkaClient, Observer, readTopics } from "./kafkaio.js"
import { LoadGenerator } from "./load.js"
import { Nemesis } from "./nemesis.js"
import { describeFault, drawSchedule, FAULT_FAMILIES, type FaultFamily, TERM_DEADLINE_MS } from "./schedule.js"
import { Prng } from "./prng.js"
import { Broker } from "./broker.js"
import { liveRoles, ROLE_NAMES, type RoleName, RoleProcess, ROOT, runCommand } from "./procs.js"
import { errorLines, logExcerpts, renderSchedule, renderSummary, type ScheduleResult, type TimelineEntry } from "./report.js"

// ---- options ----
const argv = process.argv.slice(2)
const flag = (name: string, env: string): string | undefined => {
  const i = argv.indexOf(`--${name}`)
  if (i >= 0) return argv[i + 1]
  return process.env[env] || undefined
}
const replay = flag("replay", "CHAOS_REPLAY")
const options = {
  schedules: replay ? 1 : Number(flag("schedules", "CHAOS_SCHEDULES") ?? 1),
  seed: Number(replay ?? flag("seed", "CHAOS_SEED") ?? Date.now() % 1_000_000),
  durationS: Number(flag("duration", "CHAOS_DURATION") ?? 40),
  rate: Number(flag("rate", "CHAOS_RATE") ?? 25),
  quiesceS: Number(flag("quiesce", "CHAOS_QUIESCE") ?? 60),
  faults: (flag("faults", "CHAOS_FAULTS") ?? FAULT_FAMILIES.join(",")).split(",").map((s) => s.trim()).filter(Boolean) as Array<FaultFamily>,
  keep: argv.includes("--keep"),
  kafkaPort: Number(process.env.CHAOS_KAFKA_PORT ?? 29092),
  portBase: Number(process.env.CHAOS_PORT_BASE ?? 23000),
  databaseBase: process.env.CHAOS_DATABASE_BASE ?? defaultDatabaseUrl().replace(/\/[^/]*$/, "")
}
for (const f of options.faults) {
  if (!FAULT_FAMILIES.includes(f)) {
    console.error(`unknown fault family ${f}; known: ${FAULT_FAMILIES.join(",")}`)
    process.exit(2)
  }
}
if (![options.schedules, options.seed, options.durationS, options.rate, options.quiesceS].every(Number.isFinite)) {
  console.error("--schedules, --seed, --duration, --rate and --quiesce take numbers")
  process.exit(2)
}

if (argv.includes("--plan")) {
  // print the schedules the seeds give, and run nothing
  for (let i = 0; i < options.schedules; i++) {
    const seed = options.seed + i
    process.stdout.write(`seed ${seed}:\n`)
    for (const f of drawSchedule(new Prng(seed), options.durationS * 1000, options.faults)) {
      process.stdout.write(`  at ${(f.at / 1000).toFixed(1).padStart(5)} s: ${describeFault(f)}\n`)
    }
  }
  process.exit(0)
}

const runId = new Date().toISOString().replace(/[:.]/g, "-")
const outDir = join(ROOT, "test/chaos/out", runId)
mkdirSync(outDir, { recursive: true })
const say = (s: string) => process.stdout.write(s + "\n")
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const replayCommand = (seed: number) =>
  `npm run chaos -- --replay ${seed} --duration ${options.durationS} --rate ${options.rate} --quiesce ${options.quiesceS}` +
  (options.faults.length === FAULT_FAMILIES.length ? "" : ` --faults ${options.faults.join(",")}`)

const withClient = async <A>(url: string, f: (c: pg.Client) => Promise<A>): Promise<A> => {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    return await f(c)
  } finally {
    await c.end().catch(() => undefined)
  }
}

const waitFor = async (what: string, deadlineMs: number, probe: () => Promise<boolean>) => {
  const until = Date.now() + deadlineMs
  while (Date.now() < until) {
    if (await probe().catch(() => false)) return
    await sleep(500)
  }
  throw new Error(`timed out waiting for ${what}`)
}

const answers = (url: string) => async () => (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok

// ---- one schedule ----
const runSchedule = async (broker: Broker, seed: number): Promise<ScheduleResult> => {
  const started = Date.now()
  const timeline: Array<TimelineEntry> = []
  const dir = join(outDir, `seed-${seed}`)
  mkdirSync(dir, { recursive: true })
  const note = (kind: string, detail: string) => {
    const entry = { t: Date.now() - started, kind, detail }
    timeline.push(entry)
    appendFileSync(join(dir, "timeline.log"), `${new Date().toISOString()} ${(entry.t / 1000).toFixed(1)} s ${kind} ${detail}\n`)
  }
  const database = `chaos_${seed}`
  const databaseUrl = `${options.databaseBase}/${database}`
  const tag = `${seed}-${Date.now().toString(36)}`
  const prefix = `chaos-${tag}.`
  const eventsTopic = `${prefix}orders.events`
  const dlqTopic = `${prefix}orders.events.dlq`
  broker.timeline = note
  const rng = new Prng(seed)
  const faults = drawSchedule(rng, options.durationS * 1000, options.faults)
  const load = new Prng(seed + 0x5eed)
  const replay = replayCommand(seed)
  const apiPorts = [options.portBase + 1, options.portBase + 2]
  const providerPort = options.portBase + 3
  const providerUrl = `http://127.0.0.1:${providerPort}`
  const roles = new Map<RoleName, RoleProcess>()
  const logs = () => ROLE_NAMES.map((n) => ({ name: n, file: join(dir, `${n}.log`) }))
  let nemesis: Nemesis | null = null
  const kafka = kafkaClient(broker.address, `chaos-${tag}`)
  const observer = new Observer(kafka, eventsTopic, `chaos-${tag}-observer`)
  const injector = new Injector(kafka)
  let result: ScheduleResult
  try {
    // a fresh database (a replay drops the one its seed left)
    await withClient(`${options.databaseBase}/postgres`, async (c) => {
      await c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", [database])
      await c.query(`DROP DATABASE IF EXISTS ${database}`)
    })
    const common = {
      DATABASE_URL: databaseUrl,
      DATABASE_POOL_SIZE: "4",
      KAFKA_BROKERS: broker.address,
      KAFKA_TOPIC_PREFIX: prefix,
      PAYMENT_WORKER_GROUP: `chaos-${tag}-worker`,
      PAYMENT_PROVIDER_URL: providerUrl,
      PROVIDER_PORT: String(providerPort),
      HOST: "127.0.0.1",
      LOG_LEVEL: "Info",
      SWEEP_AFTER_MS: "10000",
      RETRY_POLL_MS: "1000",
      // durable payment retries at most 10 s apart, so a payment due after the heal is retried well inside
      // the liveness bound (the default cap, 60 s, is longer than the bound itself)
      PAYMENT_RETRY_MAX_DELAY_MS: "10000",
      IDEMPOTENCY_LEASE_MS: "10000"
    }
    const migrate = await runCommand(process.execPath, [join(ROOT, "dist/main.js"), "migrate"], common)
    if (migrate.code !== 0) throw new Error(`migrate failed: ${migrate.stderr.slice(-1000)}${migrate.stdout.slice(-1000)}`)
    note("setup", `database ${database}, topic prefix ${prefix}, broker ${broker.address}`)
    const specs: Array<[RoleName, string, Record<string, string>]> = [
      ["provider", "payment-provider", {}],
      ["api1", "api", { PORT: String(apiPorts[0]) }],
      ["api2", "api", { PORT: String(apiPorts[1]) }],
      ["relay", "relay", {}],
      ["worker1", "worker", {}],
      ["worker2", "worker", {}],
      ["projector", "projector", {}]
    ]
    for (const [name, role, env] of specs) {
      const p = new RoleProcess({ name, role, env: { ...common, ...env } }, join(dir, `${name}.log`), note)
      roles.set(name, p)
      p.start()
    }
    await waitFor("the provider", 180_000, answers(`${providerUrl}/control`))
    for (const port of apiPorts) await waitFor(`api on ${port}`, 180_000, answers(`http://127.0.0.1:${port}/health/ready`))
    // the relay and workers create the topics; the observer needs them
    await waitFor("the topics", 180_000, async () => {
      const admin = kafka.admin()
      await admin.connect()
      try {
        const topics = await admin.listTopics()
        return topics.includes(eventsTopic) && topics.includes(dlqTopic)
      } finally {
        await admin.disconnect()
      }
    })
    await observer.start()
    await injector.connect()
    note("start", `all roles up; load ${options.rate}/s for ${options.durationS} s; schedule: ${faults.length} faults`)
    for (const f of faults) note("plan", `at ${(f.at / 1000).toFixed(1)} s: ${describeFault(f)}`)

    // ---- load + nemesis ----
    const loadGen = new LoadGenerator(load, apiPorts.map((p) => `http://127.0.0.1:${p}`), seed, {
      rate: options.rate,
      retryShare: 0.1,
      cancelShare: 0.1,
      maxInFlight: 300,
      timeoutMs: 10_000
    })
    nemesis = new Nemesis(rng, roles, broker, databaseUrl, providerUrl, eventsTopic, observer, injector, note)
    nemesis.run(faults)
    await loadGen.run(options.durationS * 1000)
    note("heal", "load stopped; healing")
    await nemesis.heal()
    await loadGen.drain()
    for (const port of apiPorts) await waitFor(`api on ${port} after healing`, 180_000, answers(`http://127.0.0.1:${port}/health/ready`))
    // claims left by a killed or paused api, or by a request that failed, are taken over after the lease
    // (IDEMPOTENCY_LEASE_MS): the keys are sent again only once it has passed, so a 409 then is a stuck key
    let lastFailure = nemesis.lastApiDisruption
    for (const e of loadGen.exchanges) if (e.status === null || e.status >= 500) lastFailure = Math.max(lastFailure, e.sentAt)
    const leaseLeft = lastFailure + 10_500 - Date.now()
    if (leaseLeft > 0) await sleep(leaseLeft)
    const healedAt = Date.now()
    const resent = await loadGen.retryUnanswered()
    note("heal", `sent again the ${resent} keys that never got a final answer`)

    // ---- quiescence: every order terminal, outbox empty, stats projector caught up ----
    let reached = false
    let probeError = false
    const boundMs = options.quiesceS * 1000
    while (Date.now() - healedAt < boundMs) {
      const done = await withClient(databaseUrl, async (c) => {
        const r = await c.query(`SELECT
          (SELECT count(*) FROM orders WHERE status NOT IN ('PAID','FAILED','CANCELLED'))::int AS open,
          (SELECT count(*) FROM outbox WHERE published_at IS NULL)::int AS unpublished,
          (SELECT count(*) FROM events e WHERE (e.transaction_id, e.position) >
             (SELECT transaction_id, position FROM projection_checkpoints WHERE name = 'stats'))::int AS behind,
          (SELECT count(*) FROM projection_checkpoints)::int AS checkpoints`)
        const row = r.rows[0]
        return row.open === 0 && row.unpublished === 0 && (row.behind ?? 1) === 0 && row.checkpoints > 0
      }).catch((e) => {
        if (!probeError) note("note", `quiescence probe failed: ${String(e).slice(0, 200)}`)
        probeError = true
        return false
      })
      if (done) {
        reached = true
        break
      }
      await sleep(1000)
    }
    const quiescence = { reached, seconds: (Date.now() - healedAt) / 1000, boundSeconds: options.quiesceS }
    note("check", reached ? `quiescent ${quiescence.seconds.toFixed(1)} s after healing` : `NOT quiescent within ${options.quiesceS} s`)

    // ---- collect and check ----
    const db = await loadDatabase(databaseUrl)
    const topics = await readTopics(kafka, [eventsTopic, dlqTopic], `chaos-${tag}-checker`, 60_000)
    const verifyRun = await runCommand(process.execPath, [join(ROOT, "dist/cli.js"), "projections", "verify", "--json"], { ...common, LOG_LEVEL: "None" })
    let differences: number | null = null
    try {
      differences = JSON.parse(verifyRun.stdout.slice(verifyRun.stdout.indexOf("{"))).differences
    } catch {
      differences = null
    }
    const checks = runChecks(db, {
      exchanges: loadGen.exchanges,
      requests: loadGen.requests,
      hostile: nemesis.injectedHostile,
      topic: topics.messages.get(eventsTopic)!,
      dlqTopic: topics.messages.get(dlqTopic)!,
      topicComplete: topics.complete,
      termResults: nemesis.termResults,
      termDeadlineMs: TERM_DEADLINE_MS,
      leaseMs: 10_000,
      verify: { code: verifyRun.code, differences, output: verifyRun.stdout + verifyRun.stderr },
      quiescence,
      eventsTopic
    })
    writeFileSync(join(dir, "exchanges.jsonl"), loadGen.exchanges.map((e) => JSON.stringify({ ...e, body: loadGen.requests.get(e.key)?.body, answer: e.body })).join("\n") + "\n")
    const unexpected = [...roles.values()].flatMap((r) => r.unexpectedExits.map((e) => `${r.spec.name} (code ${e.code}, signal ${e.signal})`))
    if (unexpected.length) note("note", `processes that exited on their own (restarted): ${unexpected.join("; ")}`)
    if (loadGen.notSent) note("note", `${loadGen.notSent} due requests not sent (in-flight bound reached)`)
    result = { seed, durationS: options.durationS, faults: nemesis.counts, timeline, checks, error: null, reportFile: join(dir, "report.md"), replay }
  } catch (e) {
    note("error", String((e as Error).stack ?? e).slice(0, 1500))
    result = { seed, durationS: options.durationS, faults: nemesis?.counts ?? new Map(), timeline, checks: [], error: String(e).slice(0, 500), reportFile: join(dir, "report.md"), replay }
  } finally {
    await observer.stop()
    await injector.stop()
    await Promise.all([...roles.values()].map((r) => r.shutdown()))
  }
  // ---- report ----
  const excerpts = new Map<string, Array<string>>()
  for (const c of result.checks) {
    if (c.ok) continue
    excerpts.set(c.name, [...logExcerpts(logs(), c.samples), "-- the last warnings and errors of each role:", ...errorLines(logs())])
  }
  if (result.error) excerpts.set("runner", errorLines(logs()))
  writeFileSync(result.reportFile, renderSchedule(result, excerpts))
  const failed = result.checks.filter((c) => !c.ok)
  if (!result.error && failed.length === 0 && !options.keep) {
    await withClient(`${options.databaseBase}/postgres`, (c) => c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)).catch(() => undefined)
  }
  return result
}

// ---- the run ----
const main = async () => {
  say(`chaos: ${options.schedules} schedule(s) from seed ${options.seed}, ${options.durationS} s each at ${options.rate} orders/s, ` +
    `faults ${options.faults.join(",")}, liveness bound ${options.quiesceS} s; reports in ${outDir}`)
  const pgUp = await runCommand("bash", ["scripts/postgres.sh"], {})
  if (pgUp.code !== 0) throw new Error(`PostgreSQL: ${pgUp.stderr}`)
  say("chaos: compiling (npm run build) so that restarts are quick")
  const build = await runCommand("npm", ["run", "build", "--silent"], {}, 300_000)
  if (build.code !== 0) throw new Error(`build failed:\n${build.stdout}${build.stderr}`)
  const brokerTimeline: Array<TimelineEntry> = []
  const broker = new Broker(options.kafkaPort, join(ROOT, "test/chaos/out", `kafka-${options.kafkaPort}`), (kind, detail) => brokerTimeline.push({ t: 0, kind, detail }))
  say(`chaos: starting the suite's broker on ${broker.address}`)
  await broker.start()
  const results: Array<ScheduleResult> = []
  let interrupted = false
  process.once("SIGINT", () => {
    interrupted = true
    say("chaos: interrupted; finishing the current schedule (SIGINT again or SIGTERM: stop at once)")
    process.once("SIGINT", stopNow)
  })
  const stopNow = () => {
    for (const r of liveRoles) {
      try {
        r.child?.kill("SIGKILL")
      } catch {
        // gone
      }
    }
    broker.stop().finally(() => process.exit(130))
  }
  process.once("SIGTERM", stopNow)
  try {
    for (let i = 0; i < options.schedules && !interrupted; i++) {
      const seed = options.seed + i
      const r = await runSchedule(broker, seed)
      results.push(r)
      const failed = r.checks.filter((c) => !c.ok)
      say(`\nschedule ${i + 1}/${options.schedules} seed ${seed}: ${r.error ? `ERROR ${r.error}` : failed.length === 0 ? "ok" : "FAIL"}  (${r.reportFile})`)
      say(`  faults: ${[...r.faults].map(([k, n]) => `${k} ${n}`).join(", ") || "none"}`)
      for (const c of r.checks) say(`  ${c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.summary}`)
      if (!r.error && failed.length) say(`  replay: ${r.replay}`)
      // the broker must be up and unpaused for the next schedule
      broker.resume()
      if (broker.down) await broker.restart()
    }
  } finally {
    await broker.stop()
  }
  const summary = renderSummary(results,
    `chaos run ${runId}: seed ${options.seed}, ${options.durationS} s per schedule, ${options.rate} orders/s, faults ${options.faults.join(",")}; ` +
    `machine: ${(await import("node:os")).cpus().length} cores, Node ${process.version}`)
  writeFileSync(join(outDir, "summary.md"), summary)
  say("\n" + summary)
  const ok = results.length === options.schedules && results.every((r) => !r.error && r.checks.every((c) => c.ok))
  process.exit(ok ? 0 : 1)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
