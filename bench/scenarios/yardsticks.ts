/**
 * The yardsticks, measured in the same run as our system: a do-nothing POST /orders on our own HTTP stack
 * (bench/servers/noop.ts), baseline (a) Express + pg doing the seed system's POST transaction
 * (bench/servers/express.ts) and baseline (b) the same transaction as a pgbench script at the same concurrency.
 * The node ones run with our processes' node flags (the heap and young-generation sizes): code against code.
 */
import { execFileSync } from "node:child_process"
import { dbUrl, here, log, type Settings } from "../lib/common.js"
import { runHttpScenario } from "../lib/ladder.js"
import type { CpuProbe } from "../lib/processes.js"

export const runNoop = (settings: Settings, probes: ReadonlyArray<CpuProbe>) =>
  runHttpScenario(settings, "noop", [...settings.nodeFlags, "bench/servers/noop.ts", "3201"], "http://127.0.0.1:3201/orders", probes)

export const runExpress = (settings: Settings, probes: ReadonlyArray<CpuProbe>) =>
  runHttpScenario(settings, "express", [...settings.nodeFlags, "bench/servers/express.ts", "3202", dbUrl(settings.benchDb)], "http://127.0.0.1:3202/orders", probes)

export const runPgbench = ({ concurrency, stepSeconds, benchDb }: Settings) => {
  log("scenario pgbench")
  const out = execFileSync("pgbench", [
    "-n", "-c", String(concurrency), "-j", "2", "-T", String(stepSeconds), "-f", `${here}/sql/pgbench-seed-post.sql`, dbUrl(benchDb)
  ], { encoding: "utf8" })
  const tps = Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? 0)
  const latency = Number(/latency average = ([\d.]+) ms/.exec(out)?.[1] ?? 0)
  log(`pgbench: ${Math.round(tps)} tps, latency average ${latency} ms (closed loop, ${concurrency} clients)`)
  return { clients: concurrency, seconds: stepSeconds, tps, latencyAverageMs: latency }
}

export type PgbenchResult = ReturnType<typeof runPgbench>
