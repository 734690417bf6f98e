/**
 * `npm run chaos`: the fault-injection suite (issue 11). For each schedule: a fresh database and topic prefix,
 * every role as its own process against the suite's own broker, bounded open-loop load, a seeded nemesis,
 * heal, a bounded quiescence wait, then the checker. Prints ok/fail per check and a summary table; writes a
 * report per schedule under test/chaos/out/. Exit 0 only when every check of every schedule is ok.
 *
 *   --schedules N   (CHAOS_SCHEDULES, default 1)      --seed S   (CHAOS_SEED, default: from the clock)
 *   --duration T    seconds of load and faults per schedule (CHAOS_DURATION, default 20)
 *   --rate R        orders/s (CHAOS_RATE, default 25)  --quiesce Q  liveness bound after healing (CHAOS_QUIESCE, 60)
 *   --faults a,b    fault families (CHAOS_FAULTS, default all):
 *                   kill,pause,term,broker,pg,provider,duplicate,hostile,pg-hang,pg-restart,receiver
 *   --replay S      run exactly the schedule of seed S (same --duration and --faults give the same schedule)
 *   --plan          print the schedules the seeds give and exit
 *   --keep          keep every schedule's database (by default only failing schedules' databases are kept:
 *                   as a pg_dump in the schedule's directory, since the run's own cluster goes with the run)
 *
 * PostgreSQL is the run's own cluster (postgres.ts: initdb on CHAOS_PG_PORT, default 25432, in a temp dir),
 * made before the first schedule and removed at the end, on a failure and on SIGINT/SIGTERM/SIGHUP; with
 * CHAOS_DATABASE_BASE (postgres://user@host:port) the run uses that server instead, without pg-hang and
 * pg-restart.
 *
 * Plain TypeScript on node:child_process rather than Effect: the runner is an imperative supervisor of OS
 * processes (spawn, signals, timers) and a checker of rows; it uses none of the app's layers, so it keeps
 * working whatever the app's internals become.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Broker } from "./broker.js"
import { argv, options } from "./options.js"
import { PgCluster } from "./postgres.js"
import { Prng } from "./prng.js"
import { liveRoles, ROOT, runCommand } from "./procs.js"
import { renderSummary, type ScheduleResult, type TimelineEntry } from "./report.js"
import { type RunPostgres, runSchedule } from "./run-schedule.js"
import { describeFault, drawSchedule } from "./schedule.js"

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

// ---- the run ----
let interrupted = false
const main = async () => {
  say(`chaos: ${options.schedules} schedule(s) from seed ${options.seed}, ${options.durationS} s each at ${options.rate} orders/s, ` +
    `faults ${options.faults.join(",")}, liveness bound ${options.quiesceS} s; reports in ${outDir}`)
  // the signals are taken before anything is started, so that nothing outlives the runner
  let broker: Broker | null = null
  const stopNow = () => {
    // (a plain kill here was taken for a crash: each role restarted 1 s later and outlived the runner)
    for (const r of liveRoles) r.killForGood()
    // backends stopped by a pg-hang are continued, and the cluster removed, by the exit handler
    ;(broker?.stop() ?? Promise.resolve()).finally(() => process.exit(130))
  }
  process.once("SIGINT", () => {
    interrupted = true
    say("chaos: interrupted; finishing the current schedule (SIGINT again or SIGTERM: stop at once)")
    process.once("SIGINT", stopNow)
  })
  process.once("SIGTERM", stopNow)
  process.once("SIGHUP", stopNow)
  let postgres: RunPostgres
  if (options.databaseBase) {
    const pgUp = await runCommand("bash", ["scripts/postgres.sh"], { DATABASE_URL: `${options.databaseBase}/postgres` })
    if (pgUp.code !== 0) throw new Error(`PostgreSQL: ${pgUp.stderr}`)
    postgres = { cluster: null, base: options.databaseBase }
  } else {
    const cluster = new PgCluster(options.pgPort)
    // every way out of the runner passes here (process.exit, an uncaught failure, the signals above)
    process.on("exit", () => cluster.removeSync(join(outDir, "postgres.log")))
    say(`chaos: making the run's own PostgreSQL cluster on port ${cluster.port} in ${cluster.dir}`)
    await cluster.create()
    postgres = { cluster, base: cluster.url }
  }
  say("chaos: compiling (npm run build) so that restarts are quick")
  const build = await runCommand("npm", ["run", "build", "--silent"], {}, 300_000)
  if (build.code !== 0) throw new Error(`build failed:\n${build.stdout}${build.stderr}`)
  const brokerTimeline: Array<TimelineEntry> = []
  broker = new Broker(options.kafkaPort, join(ROOT, "test/chaos/out", `kafka-${options.kafkaPort}`), (kind, detail) => brokerTimeline.push({ t: 0, kind, detail }))
  say(`chaos: starting the suite's broker on ${broker.address}`)
  await broker.start()
  const results: Array<ScheduleResult> = []
  try {
    for (let i = 0; i < options.schedules && !interrupted; i++) {
      const seed = options.seed + i
      const r = await runSchedule(broker, postgres, seed, outDir)
      results.push(r)
      const failed = r.checks.filter((c) => !c.ok)
      say(`\nschedule ${i + 1}/${options.schedules} seed ${seed}: ${r.error ? `ERROR ${r.error}` : failed.length === 0 ? "ok" : "FAIL"}  (${r.reportFile})`)
      say(`  faults: ${[...r.faults].map(([k, n]) => `${k} ${n}`).join(", ") || "none"}`)
      for (const c of r.checks) {
        say(`  ${c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.summary}`)
        // the first failures in the console too: a CI log is often all there is of a failed run
        if (!c.ok) for (const line of c.details.slice(0, 3)) say(`       ${line.slice(0, 1500)}`)
      }
      if (!r.error && failed.length) say(`  replay: ${r.replay}`)
      // the broker and PostgreSQL must be up and unpaused for the next schedule (a schedule that failed
      // early did not heal)
      broker.resume()
      if (broker.down) await broker.restart()
      postgres.cluster?.continueAll()
      await postgres.cluster?.ensureRunning()
    }
  } finally {
    await broker.stop()
    postgres.cluster?.removeSync(join(outDir, "postgres.log"))
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
