/**
 * `npm run bench`: throughput and latency of the whole system, side by side with baselines measured in the
 * same run on the same machine (issue #6). Starts (or reuses) PostgreSQL and the Kafka broker, then:
 *
 *   noop      a do-nothing POST /orders on our own HTTP stack (bench/servers/noop.ts)
 *   express   baseline (a): Express + pg doing the seed system's POST transaction (bench/servers/express.ts)
 *   pgbench   baseline (b): the same transaction as a pgbench script, at the same concurrency (10)
 *   api       our POST /orders alone (`dist/main.js api`: the append, outbox row, projection row in one
 *             group-committed statement; nothing consumes the outbox) — the like-for-like comparison with (a)
 *   api-previous  the same, for the api role of an earlier commit built in a worktree (BENCH_API_BASELINE_REF)
 *   api-node26  the same api role, the same build, on Node 26 (scripts/node.sh): what the LTS changes
 *   ours      the real system, all its roles in one process (`dist/main.js api,relay,worker,projector`), and
 *             the payment provider simulator (20 ms) in a process of its own: it stands for the external
 *             provider, so its CPU is reported apart and its memory is not ours
 *   scale     two api processes and two `relay,worker,projector` processes on one database and broker, the
 *             load shared between the two APIs: CPU per order against `split` (one of each)
 *   watchers  1,000 concurrent SSE watchers (GET /orders/:id/watch) on the api role: its memory before and
 *             with them, per watcher, and that every watcher sees its order PAID once the pipeline runs
 *   webhooks  `ours` plus the notifier (a process of its own) and the webhook receiver simulator, at one fixed
 *             rate (BENCH_WEBHOOK_RATE), in two runs: one healthy endpoint alone, then healthy + one failing 20 %
 *             + one hanging: deliveries/s and event → delivered p50/p99 to the healthy one, the notifier's CPU
 *             per delivered event and per order, the failing one's retries, the hanging one's backlog
 *   rebuild   bench/rebuild.ts: projection rebuild on 1M events vs a SQL-only CREATE TABLE AS (baseline c)
 *
 * Each HTTP scenario gets an open-loop constant-arrival-rate load (bench/lib/loadgen.ts) stepped through
 * increasing rates until it stops keeping up. A step is *sustained* when every request got its 201, the
 * accepted rate is ≥ 97% of the offered one and the POST p99 (measured from each request's due time) is
 * ≤ 500 ms. For `ours`, each step then waits until its orders are PAID and reads from the database: POST→PAID
 * latency (OrderPaid.recorded_at − OrderPlaced.recorded_at), PAID orders/s, relay lag (outbox row committed →
 * acknowledged by Kafka); consumer lag is sampled from /metrics during the step. A step *kept up* when all its
 * orders were PAID, at ≥ 97% of the offered rate (first to last OrderPaid), with no backlog left 2 s after
 * its last POST; the end-to-end maximum is the highest such step, and a last step runs at 70% of it.
 * Every scenario first gets 5 s of unrecorded warm-up load (JIT, pools).
 * CPU-seconds per order come from /proc for each process (the app, all of PostgreSQL, the Kafka JVM, the load
 * generator); peak RSS is the app's VmHWM.
 *
 * Writes bench/results/bench.{json,md}, latency.svg and rebuild.{json,md} — a partial run (BENCH_SCENARIOS short
 * of all, or any BENCH_ setting below but BENCH_SCENARIOS and BENCH_DATABASE) writes
 * bench/results/bench-<UTC time>-partial.{json,md}, its -latency.svg and -rebuild.{json,md} instead. Nothing
 * here asserts a speed.
 * Environment: BENCH_STEP_SECONDS (default 10), BENCH_RATES (comma list), BENCH_PIPELINE_RATES (the pipeline
 * scenarios' ladder; default 100,150 then BENCH_RATES's), BENCH_SCENARIOS (comma list of
 * noop,express,pgbench,api,api-node26,api-previous,ours,split,scale,previous,watchers,webhooks,rebuild),
 * BENCH_BASELINE_REF (the `previous` pipeline's commit, default 0cb07b9), BENCH_API_BASELINE_REF (`api-previous`'s, default
 * BENCH_BASELINE_REF or b998d2e), BENCH_WATCHERS (default 1,000), BENCH_WEBHOOK_RATE (orders/s, default 10: a 2-core machine keeps up with three endpoints there), BENCH_WEBHOOK_PAIRS (default 3), BENCH_WEBHOOK_STEP_SECONDS (default 20),
 * BENCH_WEBHOOK_PROFILE=1 (the notifier under --cpu-prof, its profile summarized), BENCH_WEBHOOK_CONTROL=1 (the control for
 * the isolation target: `three`'s other two endpoints healthy; the target not judged), BENCH_WEBHOOK_ANALYZE=0 (the
 * webhook tables left without statistics, as this server's autovacuum=off leaves them), BENCH_DATABASE (default
 * orders_bench), BENCH_REBUILD_ORDERS (default 333,334 = 1,000,002 events).
 */
import { execFileSync } from "node:child_process"
import { cpus, totalmem } from "node:os"
import pg from "pg"
import { dbUrl, freshDatabase, root, type Settings, sh } from "./lib/common.js"
import { kafkaProbe, postgresProbe, selfProbe } from "./lib/processes.js"
import { writeReport } from "./report.js"
import { runApi, runApiPrevious } from "./scenarios/api.js"
import { runPipeline, runPrevious } from "./scenarios/pipeline.js"
import { runRebuild } from "./scenarios/rebuild.js"
import { runWatchers } from "./scenarios/watchers.js"
import { runWebhooks } from "./scenarios/webhooks.js"
import { runExpress, runNoop, runPgbench } from "./scenarios/yardsticks.js"

const stepSeconds = Number(process.env.BENCH_STEP_SECONDS ?? 10)
const rates = (process.env.BENCH_RATES ?? "200,300,400,500,600,800,1000,1250,1500,2000,2500,3000,4000,5000,6000,8000,10000")
  .split(",").map(Number)
const allScenarios = "noop,express,pgbench,api,api-node26,api-previous,ours,split,scale,previous,watchers,webhooks,rebuild"
// the pipeline scenarios start lower: the 2026-12-08 run's machine kept the previous code up at no step of the
// ladder above (186 PAID/s of 200), leaving the CPU-per-order must unmeasured
const pipelineRates = (process.env.BENCH_PIPELINE_RATES ?? (process.env.BENCH_RATES !== undefined ? rates.join(",") : `100,150,${rates.join(",")}`))
  .split(",").map(Number)
const scenarios = new Set((process.env.BENCH_SCENARIOS ?? allScenarios).split(","))
/** A run of fewer scenarios, or of another ladder, writes files of its own: only a full run replaces
 * bench/results/bench.* (which docs/PERFORMANCE.md "Latest results" describes). */
const overrides = Object.keys(process.env).filter((name) =>
  /^BENCH_(RATES|PIPELINE_RATES|STEP_SECONDS|NODE_FLAGS|BASELINE_REF|API_BASELINE_REF|WATCHERS|REBUILD_ORDERS|WEBHOOK_.*)$/.test(name))
const partial = allScenarios.split(",").some((s) => !scenarios.has(s)) || overrides.length > 0
const reportName = partial ? `bench-${new Date().toISOString().slice(0, 19).replaceAll(":", "")}-partial` : "bench"
const rebuildOrders = process.env.BENCH_REBUILD_ORDERS ?? "333334"
const concurrency = 10
const providerLatencyMs = 20
/** Node flags of our process, as scripts/start.sh runs it. */
const nodeFlags = (process.env.BENCH_NODE_FLAGS ?? "--max-old-space-size=256 --max-semi-space-size=32").split(" ").filter(Boolean)

/** Scenario databases are named after it (BENCH_DATABASE: two checkouts benchmarking on one server). */
const benchDb = process.env.BENCH_DATABASE ?? "orders_bench"
const watcherCount = Number(process.env.BENCH_WATCHERS ?? 1000)
const webhookRate = Number(process.env.BENCH_WEBHOOK_RATE ?? 10)
const settings: Settings = { stepSeconds, rates, pipelineRates, concurrency, providerLatencyMs, nodeFlags, benchDb }

const main = async () => {
  sh("postgres.sh")
  const brokers = ["ours", "api", "api-node26", "api-previous", "split", "scale", "previous", "watchers", "webhooks"].some((x) => scenarios.has(x)) ? sh("kafka.sh", "start") : ""
  freshDatabase(benchDb)
  const pool = new pg.Pool({ connectionString: dbUrl(benchDb), max: 2 })
  const kafka = kafkaProbe(brokers)
  const probes = [await postgresProbe(pool), ...(kafka ? [kafka] : []), selfProbe]
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    postgres: (await pool.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v
  }

  const noop = scenarios.has("noop") ? await runNoop(settings, probes) : undefined
  const express = scenarios.has("express") ? await runExpress(settings, probes) : undefined
  const pgbench = scenarios.has("pgbench") ? runPgbench(settings) : undefined
  // our scenarios run the compiled build, as deployed (`npm start` runs it too): under tsx the same process
  // carries ~100 MB of transpiler and source maps
  if (["ours", "api", "api-node26", "split", "scale", "watchers", "webhooks"].some((x) => scenarios.has(x))) {
    execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit" })
  }
  // our POST path alone: the api role in its own process, nothing consuming the outbox
  // the api role alone from the pipeline's lowest rate: the POST p99 target compares it at the pipeline's 70 % rate
  const api = scenarios.has("api") ? await runApi({ ...settings, rates: [...new Set([...pipelineRates, ...rates])].sort((a, b) => a - b) }, probes, brokers) : undefined
  // the same api role on the current LTS (the pinned Node 26 of scripts/node.sh), in the same run
  const apiNode26 = scenarios.has("api-node26")
    ? await runApi(settings, probes, brokers, "api-node26", `${sh("node.sh", "bin")}/node`)
    : undefined
  // what the api scenarios wrote is not for the pipeline of the next one to publish and charge
  if (api || apiNode26) await pool.query("UPDATE outbox SET published_at = now() WHERE published_at IS NULL")
  // the api role of the code before this round's change, measured the same way in this run (issue 14: CPU
  // per order no worse than before); its own database, since its migrations may differ
  const apiBaselineRef = process.env.BENCH_API_BASELINE_REF ?? process.env.BENCH_BASELINE_REF ?? "b998d2e"
  const apiPrevious = scenarios.has("api-previous") ? await runApiPrevious(settings, probes, brokers, apiBaselineRef) : undefined
  const ours = scenarios.has("ours")
    ? await runPipeline(settings, probes, brokers, { name: "ours", root, processes: ["api,relay,worker,projector"], errorRate: 0.05 })
    : undefined
  // the layout users deploy: the API apart from the pipeline's roles
  const split = scenarios.has("split")
    ? await runPipeline(settings, probes, brokers, { name: "split", root, processes: ["api", "relay,worker,projector"] })
    : undefined
  // more processes on one database and broker: two APIs sharing the load, two pipelines in one consumer group
  const scale = scenarios.has("scale")
    ? await runPipeline(settings, probes, brokers, { name: "scale", root, processes: ["api", "api", "relay,worker,projector", "relay,worker,projector"] })
    : undefined
  // the code before the change, measured the same way in this run
  const baselineRef = process.env.BENCH_BASELINE_REF ?? "0cb07b9"
  const previous = scenarios.has("previous") ? await runPrevious(settings, probes, brokers, baselineRef) : undefined
  const watchers = scenarios.has("watchers") ? await runWatchers(settings, brokers, watcherCount) : undefined
  // the notifier beside the whole system, one healthy endpoint alone, then beside a failing and a hanging one
  const webhooks = scenarios.has("webhooks") ? await runWebhooks(settings, probes, brokers, webhookRate) : undefined
  await pool.end()
  const rebuild = scenarios.has("rebuild") ? runRebuild(rebuildOrders, partial ? `${reportName}-rebuild` : "rebuild") : undefined

  writeReport(settings, machine, { apiBaselineRef, baselineRef, name: reportName }, { noop, express, pgbench, api, apiNode26, apiPrevious, ours, split, scale, previous, watchers, webhooks, rebuild })
}

main().then(() => process.exit(0), (e) => {
  console.error(e)
  process.exit(1)
})
