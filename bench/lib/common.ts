/**
 * What the parts of `npm run bench` share: the paths of bench/ and of the checkout, the log line, rounding,
 * the scenario databases' URLs, the scripts/ and psql helpers, the POST /orders body and reading a metric
 * from a /metrics page.
 */
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { databaseUrl } from "../../src/Config.js"

/** bench/ */
export const here = fileURLToPath(new URL("..", import.meta.url))
export const root = fileURLToPath(new URL("../..", import.meta.url))

const baseUrl = new URL(databaseUrl())
export const dbUrl = (name: string) => {
  const u = new URL(baseUrl)
  u.pathname = `/${name}`
  return u.toString()
}
export const log = (...args: Array<unknown>) => console.error(new Date().toISOString().slice(11, 19), ...args)
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
export const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits

// ---------------------------------------------------------------------------------------------------- setup

export const sh = (script: string, ...args: Array<string>) =>
  execFileSync("bash", [`${root}/scripts/${script}`, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim()

export const psql = (url: string, ...args: Array<string>) => execFileSync("psql", [url, "-q", "-v", "ON_ERROR_STOP=1", ...args], { stdio: "inherit" })

export const freshDatabase = (benchDb: string) => {
  psql(dbUrl("postgres"), "-c", `DROP DATABASE IF EXISTS ${benchDb} WITH (FORCE)`, "-c", `CREATE DATABASE ${benchDb}`)
  psql(dbUrl(benchDb), "-f", `${here}/sql/seed-schema.sql`)
}

const userIds = Array.from({ length: 1000 }, () => crypto.randomUUID())
export const orderBody = (i: number) =>
  JSON.stringify({ userId: userIds[i % userIds.length], amount: `${10 + (i % 90)}.${String(i % 100).padStart(2, "0")}`, currency: "EUR" })

/** The sum of a metric's series (e.g. consumer lag over partitions); NaN when it has none. */
export const metricValue = (text: string, name: string) => {
  const lines = text.split("\n").filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
  return lines.length === 0 ? NaN : lines.reduce((sum, l) => sum + Number(l.split(" ").pop()), 0)
}

/** What bench/run.ts reads from the environment (BENCH_*) and its fixed parameters, passed to the scenarios. */
export interface Settings {
  readonly stepSeconds: number
  readonly rates: ReadonlyArray<number>
  /** The pipeline scenarios' ladder: lower first steps, so that on a slow machine there is a rate every
   * layout and the previous code keep up with (the CPU-per-order targets compare there). */
  readonly pipelineRates: ReadonlyArray<number>
  readonly concurrency: number
  readonly providerLatencyMs: number
  /** Node flags of our process, as scripts/start.sh runs it. */
  readonly nodeFlags: ReadonlyArray<string>
  /** Scenario databases are named after it (BENCH_DATABASE: two checkouts benchmarking on one server). */
  readonly benchDb: string
}
