/**
 * What one operation costs this machine when it comes alone. The same work — a timer firing, one PostgreSQL
 * round trip — measured back to back and then with the process idle for a gap between operations: CPU of this
 * process from process.cpuUsage() (user + system, what /proc reports and what the benchmark's CPU per order is
 * made of), per operation. On a machine where waking an idle process is expensive, an order handled at 10/s
 * costs several times one handled at 300/s, whatever the code does (docs/PERFORMANCE.md "Session 16").
 * Plain node and `pg`: no Effect, none of our code. Nothing here asserts a speed.
 * Run: `node --import tsx bench/idle-cost.ts` (the `postgres` database of DATABASE_URL's server, as the benchmark's;
 * IDLE_GAPS_MS, default 0,1,5,20,50).
 */
import pg from "pg"
import { dbUrl, sleep } from "./lib/common.js"

const gaps = (process.env.IDLE_GAPS_MS ?? "0,1,5,20,50").split(",").map(Number)
/** An operation's count for a gap: enough for ~2 s of wall time, at least 50. */
const countFor = (gap: number, each: number) => Math.max(50, Math.round(2000 / (gap + each)))

const measure = async (count: number, gap: number, operation: () => Promise<unknown>) => {
  const before = process.cpuUsage()
  for (let i = 0; i < count; i++) {
    await operation()
    if (gap > 0) await sleep(gap)
  }
  const used = process.cpuUsage(before)
  // a gap's own timer is part of the cost of an operation that comes alone: it is how the process sleeps
  return { cpuMs: (used.user + used.system) / 1000 / count, userMs: used.user / 1000 / count, systemMs: used.system / 1000 / count }
}

const main = async () => {
  const client = new pg.Client({ connectionString: dbUrl("postgres") })
  await client.connect()
  const query = () => client.query("SELECT $1::int AS x", [1])
  for (let i = 0; i < 500; i++) await query()
  const rows: Array<string> = []
  for (const gap of gaps) {
    const timer = gap === 0 ? undefined : await measure(countFor(gap, 0), gap, () => Promise.resolve())
    const round = await measure(countFor(gap, 0.2), gap, query)
    rows.push(
      `| ${gap} | ${timer === undefined ? "–" : timer.cpuMs.toFixed(3)} | ${round.cpuMs.toFixed(3)} (${round.userMs.toFixed(3)} user · ${round.systemMs.toFixed(3)} system) | ${
        timer === undefined ? round.cpuMs.toFixed(3) : Math.max(round.cpuMs - timer.cpuMs, 0).toFixed(3)
      } |`
    )
  }
  await client.end()
  console.log(
    [
      "| idle gap ms | a timer wakeup alone: CPU ms | one PostgreSQL round trip then the gap: CPU ms | the round trip's share (less the wakeup) |",
      "| --- | --- | --- | --- |",
      ...rows
    ].join("\n")
  )
}

await main()
