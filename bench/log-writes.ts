/**
 * Micro-benchmark behind the logging decision (docs/OPERATIONS.md "Logging"): CPU per log line written to a pipe, one
 * write(2) per line (what src/observability/Logging.ts does, so kill -9 loses no line) against one write per
 * event-loop turn (the former buffered logger). Run: `node --import tsx bench/log-writes.ts`.
 * Each mode runs in a child process whose stdout is a pipe drained by the parent, like a log collector.
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

const lines = 200_000
const perTurn = 50 // lines logged per event-loop turn (a busy server logs several per turn)
const line = JSON.stringify({
  ts: new Date().toISOString(), level: "INFO", service: "orders-es", role: "all", type: "STATE_CHANGE",
  msg: "state changed", orderId: "01a212da-6c64-75ba-840e-52db8f824c35", eventType: "OrderPaid",
  from: "PAYMENT_PENDING", to: "PAID", version: 3
}) + "\n"

const child = async (mode: string) => {
  let pending: Array<string> = []
  const flush = () => {
    const text = pending.join("")
    pending = []
    process.stdout.write(text)
  }
  const write = mode === "per-line"
    ? (l: string) => void process.stdout.write(l)
    : (l: string) => {
      if (pending.push(l) === 1) setImmediate(flush)
    }
  const start = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < lines; i += perTurn) {
    for (let j = 0; j < perTurn; j++) write(line)
    await new Promise((r) => setImmediate(r))
  }
  const cpu = process.cpuUsage(start)
  const wall = Number(process.hrtime.bigint() - t0) / 1e6
  process.stderr.write(JSON.stringify({ mode, lines, perTurn, cpuUsPerLine: (cpu.user + cpu.system) / lines, wallMs: wall }) + "\n")
}

const parent = async () => {
  for (const mode of ["per-line", "per-turn", "per-line", "per-turn"]) {
    await new Promise<void>((resolve) => {
      const p = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), mode], { stdio: ["ignore", "pipe", "inherit"] })
      p.stdout.resume() // drain, as a log collector would
      p.on("exit", () => resolve())
    })
  }
}

if (process.argv[2]) void child(process.argv[2])
else void parent()
