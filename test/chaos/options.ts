/**
 * The runner's options: the flags of `npm run chaos` (listed in main.ts), each with its CHAOS_* variable,
 * parsed and checked once (an unknown fault family or a flag that is not a number exits 2), and the command
 * that replays one schedule with the same options.
 */
import { FAULT_FAMILIES, type FaultFamily } from "./schedule.js"

export const argv = process.argv.slice(2)
const flag = (name: string, env: string): string | undefined => {
  const i = argv.indexOf(`--${name}`)
  if (i >= 0) return argv[i + 1]
  return process.env[env] || undefined
}
const replay = flag("replay", "CHAOS_REPLAY")
export const options = {
  schedules: replay ? 1 : Number(flag("schedules", "CHAOS_SCHEDULES") ?? 1),
  seed: Number(replay ?? flag("seed", "CHAOS_SEED") ?? Date.now() % 1_000_000),
  durationS: Number(flag("duration", "CHAOS_DURATION") ?? 20),
  rate: Number(flag("rate", "CHAOS_RATE") ?? 25),
  quiesceS: Number(flag("quiesce", "CHAOS_QUIESCE") ?? 60),
  faults: (flag("faults", "CHAOS_FAULTS") ?? FAULT_FAMILIES.join(",")).split(",").map((s) => s.trim()).filter(Boolean) as Array<FaultFamily>,
  keep: argv.includes("--keep"),
  kafkaPort: Number(process.env.CHAOS_KAFKA_PORT ?? 29092),
  portBase: Number(process.env.CHAOS_PORT_BASE ?? 23000),
  /** the run's own PostgreSQL cluster's port (postgres.ts) */
  pgPort: Number(process.env.CHAOS_PG_PORT ?? 25432),
  /** another server instead of the run's own cluster (postgres://user@host:port, no database): then neither
   * pg-hang nor pg-restart, which only the cluster's owner may inflict */
  databaseBase: process.env.CHAOS_DATABASE_BASE || null
}
for (const f of options.faults) {
  if (!FAULT_FAMILIES.includes(f)) {
    console.error(`unknown fault family ${f}; known: ${FAULT_FAMILIES.join(",")}`)
    process.exit(2)
  }
}
if (options.databaseBase && options.faults.some((f) => f === "pg-hang" || f === "pg-restart")) {
  console.error("pg-hang and pg-restart need the run's own cluster: unset CHAOS_DATABASE_BASE or leave them out of --faults")
  process.exit(2)
}
if (![options.schedules, options.seed, options.durationS, options.rate, options.quiesceS, options.pgPort].every(Number.isFinite)) {
  console.error("--schedules, --seed, --duration, --rate and --quiesce take numbers")
  process.exit(2)
}

export const replayCommand = (seed: number) =>
  `npm run chaos -- --replay ${seed} --duration ${options.durationS} --rate ${options.rate} --quiesce ${options.quiesceS}` +
  (options.faults.length === FAULT_FAMILIES.length ? "" : ` --faults ${options.faults.join(",")}`)
