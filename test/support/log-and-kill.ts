/**
 * Fixture of test/logging.test.ts: logs LINES lines through the production logger (role `worker`), several per
 * event-loop turn like a busy server, writes the log-stall counters to stderr (`stalls=N seconds=S`), then kills
 * itself with SIGKILL at once — no exit handler runs.
 */
import { Effect, Metric } from "effect"
import { writeSync } from "node:fs"
import { logWriteStalledSeconds, logWriteStalls, loggingFor } from "../../src/observability/Logging.js"

const lines = Number(process.env.LINES ?? 2000)
// (tells a test that holds back reading stdout when the lines are about to be written)
process.stderr.write("logging\n")

Effect.runSync(
  Effect.forEach(
    Array.from({ length: lines }, (_, i) => i),
    (i) => Effect.logInfo("state changed").pipe(Effect.annotateLogs({ type: "STATE_CHANGE", n: i })),
    { discard: true }
  ).pipe(
    Effect.zipRight(Effect.all([Metric.value(logWriteStalls), Metric.value(logWriteStalledSeconds)])),
    Effect.map(([stalls, seconds]) => writeSync(2, `stalls=${stalls.count} seconds=${seconds.count}\n`)),
    Effect.provide(loggingFor("worker"))
  )
)
process.kill(process.pid, "SIGKILL")
