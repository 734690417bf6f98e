/**
 * Rebuild benchmark: seeds a database with ≥ 1M events (bench/sql/seed-events.sql), then in the same run measures
 *   (ours)     the projection rebuild (src/projection/Rebuild.ts, the same code as `cli projections rebuild`)
 *   (baseline) a SQL-only rebuild: CREATE TABLE AS over the events, on the same data
 * and checks `verify` finds 0 differences. Prints a markdown table and writes it and JSON to
 * bench/results/rebuild.{md,json} (REBUILD_REPORT_NAME names them otherwise).
 * Usage: npm run bench:rebuild [-- <orders>]   (default 333,334 orders = 1,000,002 events)
 */
import { SqlClient } from "@effect/sql"
import { Effect, Layer, Redacted } from "effect"
import { execFileSync } from "node:child_process"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { cpus, totalmem } from "node:os"
import { fileURLToPath } from "node:url"
import { databaseUrl } from "../src/Config.js"
import { rebuildOrders, verifyOrders } from "../src/projection/Rebuild.js"
import { MigrationsLive, PgLive } from "../src/Sql.js"

const orders = Number(process.argv[2] ?? 333_334)
/** bench/results/`name`.{json,md} (`npm run bench` names a partial run's) */
const reportName = process.env.REBUILD_REPORT_NAME ?? "rebuild"
const base = new URL(databaseUrl())
base.pathname = "/orders_bench_rebuild"
const url = base.toString()
const here = fileURLToPath(new URL(".", import.meta.url))

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`TRUNCATE events, outbox, orders`
  console.error(`seeding ${orders} orders (${orders * 3} events)…`)
  execFileSync("psql", [url, "-q", "-v", `orders=${orders}`, "-f", `${here}/sql/seed-events.sql`], { stdio: "inherit" })
  yield* sql`VACUUM ANALYZE events`
  const [{ n: events }] = (yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM events`) as [{ n: number }]

  const t0 = performance.now()
  const result = yield* rebuildOrders()
  const oursSeconds = (performance.now() - t0) / 1000
  const differences = (yield* verifyOrders).length

  const t1 = performance.now()
  yield* sql`DROP TABLE IF EXISTS orders_sql_baseline`
  yield* sql.unsafe(readFileSync(`${here}/sql/sql-rebuild.sql`, "utf8"))
  const baselineSeconds = (performance.now() - t1) / 1000
  yield* sql`DROP TABLE orders_sql_baseline`

  const report = {
    measuredAt: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30) },
    events,
    orders: result.orders,
    ours: { seconds: oursSeconds, eventsPerSecond: events / oursSeconds },
    sqlOnlyBaseline: { seconds: baselineSeconds, eventsPerSecond: events / baselineSeconds },
    ratioToBaseline: (events / oursSeconds) / (events / baselineSeconds),
    verifyDifferences: differences
  }
  mkdirSync(`${here}/results`, { recursive: true })
  writeFileSync(`${here}/results/${reportName}.json`, JSON.stringify(report, null, 2) + "\n")
  const table = [
    `| rebuild of ${events.toLocaleString("en")} events | seconds | events/s | ratio to SQL-only |`,
    "| --- | --- | --- | --- |",
    `| ours (fold in TypeScript, swap) | ${oursSeconds.toFixed(1)} | ${Math.round(report.ours.eventsPerSecond)} | ${report.ratioToBaseline.toFixed(2)} |`,
    `| SQL-only baseline (CREATE TABLE AS) | ${baselineSeconds.toFixed(1)} | ${Math.round(report.sqlOnlyBaseline.eventsPerSecond)} | 1.00 |`,
    "",
    `verify after rebuild: ${differences} differences. Machine: ${report.machine.cpus} cores, ${report.machine.memoryGiB} GiB.`
  ].join("\n")
  writeFileSync(`${here}/results/${reportName}.md`, table + "\n")
  console.log(table)
  if (differences > 0) process.exitCode = 1
})

Effect.runPromise(
  program.pipe(Effect.provide(MigrationsLive.pipe(Layer.provideMerge(PgLive(Redacted.make(url))))))
).catch((e) => {
  console.error(e)
  process.exit(1)
})
