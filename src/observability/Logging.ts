/**
 * Logs as JSON lines: `{"ts","level","service","role","type","msg",...annotations}`. `service` is always
 * `orders-es` and `role` the process's role(s) as launched (`all`, `api,relay`, `cli`); a log annotation
 * `role` (a component naming itself inside an `all` process) overrides it. `type` names what happened
 * (STARTUP, SHUTDOWN, STATE_CHANGE, HTTP_ERROR, ...) and comes from the `type` annotation; other annotations
 * (orderId, eventId, ...) are fields of the line, not interpolated into the message.
 *
 * Every line is handed to the OS as it is logged (invariant 10: a process killed with SIGKILL loses no line
 * the OS did not receive): a synchronous write(2) on fd 1, retried until complete (`writeStdout`). Gathering the lines of one event-loop turn into one write costs less CPU
 * (measured: bench/log-writes.ts, docs/OPERATIONS.md "Logging") but lost up to a turn of lines on kill -9.
 */
import { Cause, Effect, HashMap, Layer, Logger, LogLevel, Metric } from "effect"
import { writeSync } from "node:fs"
import { LogLevelName } from "../Config.js"
import { tracingEnabled } from "./Tracing.js"

export const service = "orders-es"

/**
 * A message that carries fields of its line: logged as `Effect.logInfo(withFields("state changed", { type:
 * "STATE_CHANGE", orderId }))`, the JSON logger writes the same JSON object as `Effect.annotateLogs` around the log
 * would (the fields over the fiber's annotations, as an inner annotation; keys in another order) — without
 * annotating, which sets a fiber ref twice (two copies of the fiber's refs) and builds a HashMap for every line:
 * for the lines logged on every order (issue 24). Log it through `logInfoWithFields`, which annotates when tracing
 * is on: Effect's tracer logger makes each line an event of the current span from the annotations, and would
 * show this message as JSON, its fields not as attributes.
 */
export class LogFields {
  constructor(readonly message: string, readonly fields: Readonly<Record<string, unknown>>) {}
  toString() {
    return this.message
  }
}
export const withFields = (message: string, fields: Readonly<Record<string, unknown>>) => new LogFields(message, fields)

/** An INFO line with these fields: carried by the message (`LogFields`), or annotated when tracing is on. */
export const logInfoWithFields = (message: string, fields: Readonly<Record<string, unknown>>) =>
  tracingEnabled() ? Effect.annotateLogs(Effect.logInfo(message), fields) : Effect.logInfo(withFields(message, fields))

/** The fields a logged message carries (`Effect.log*` hands a logger its arguments as an array). */
const carriedFields = (message: unknown, into: Record<string, unknown>) => {
  if (message instanceof LogFields) Object.assign(into, message.fields)
  else if (Array.isArray(message)) for (const part of message) if (part instanceof LogFields) Object.assign(into, part.fields)
}

/** The fields of a line: the fiber's annotations, then those its message carries (LogFields). */
export const lineFields = (annotations: HashMap.HashMap<string, unknown>, message: unknown): Record<string, unknown> => {
  const fields: Record<string, unknown> = {}
  for (const [key, value] of HashMap.toEntries(annotations)) fields[key] = value
  carriedFields(message, fields)
  return fields
}

export const jsonLineLogger = (role: string, write: (line: string) => void) =>
  Logger.make<unknown, void>(({ annotations, cause, date, logLevel, message }) => {
    const line: Record<string, unknown> = {
      ts: date.toISOString(),
      level: logLevel.label,
      service,
      role,
      type: "LOG",
      msg: Array.isArray(message) ? message.map(String).join(" ") : String(message)
    }
    for (const [key, value] of HashMap.toEntries(annotations)) line[key] = value
    carriedFields(message, line)
    if (!Cause.isEmpty(cause)) line.cause = Cause.pretty(cause)
    write(JSON.stringify(line) + "\n")
  })

/** A level by its name or label, any case: "Warning" or "WARN", "Debug", "None"… (default Info). */
export const parseLogLevel = (level: string | undefined): LogLevel.LogLevel => {
  const wanted = (level ?? "").toLowerCase()
  return LogLevel.allLevels.find((l) => l._tag.toLowerCase() === wanted || l.label.toLowerCase() === wanted) ??
    LogLevel.Info
}

/** The minimum level LOG_LEVEL names (default Info), read when the layer is built. */
export const LogLevelLive = Layer.unwrapEffect(
  Effect.map(Effect.orDie(LogLevelName), (name) => Logger.minimumLogLevel(parseLogLevel(name)))
)

const pause = new Int32Array(new SharedArrayBuffer(4))

/** Lines that found stdout full (a slow log reader) and waited; a stall cannot be logged, so it is counted. */
export const logWriteStalls = Metric.counter("log_write_stalls_total", {
  description: "log lines whose write found stdout full (EAGAIN) and waited for the log reader",
  incremental: true
})
/** The time those lines waited, in total. */
export const logWriteStalledSeconds = Metric.counter("log_write_stalled_seconds_total", {
  description: "seconds spent waiting for a full stdout (a slow log reader) before a log line was written",
  incremental: true
})

/**
 * write(2) on fd 1 until the whole line is in the OS's hands. Not `process.stdout.write`: to a pipe or socket
 * whose reader is slow it queues the line inside the process once the buffer is full, and kill -9 loses the
 * queue (seen: 278 of 3,000 lines reached a reader busy for 3 s). When fd 1 is non-blocking and full (EAGAIN)
 * this waits 1 ms and tries again: a log reader that stops reading stops the process — a line is never lost.
 */
const writeStdout = (line: string) => {
  const bytes = Buffer.from(line)
  let written = 0
  let stalledSince = 0
  while (written < bytes.length) {
    try {
      written += writeSync(1, bytes, written)
    } catch (e) {
      // EPIPE and the like: no reader is left to lose the line for (a logger must not throw)
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") return
      if (stalledSince === 0) stalledSince = performance.now()
      Atomics.wait(pause, 0, 0, 1)
    }
  }
  if (stalledSince !== 0) {
    logWriteStalls.unsafeUpdate(1, [])
    logWriteStalledSeconds.unsafeUpdate((performance.now() - stalledSince) / 1000, [])
  }
}

/** The default logger replaced by JSON lines naming `role`, at LOG_LEVEL (default INFO), each written at once. */
export const loggingFor = (role: string) =>
  Layer.mergeAll(
    Logger.replace(Logger.defaultLogger, jsonLineLogger(role, writeStdout)),
    LogLevelLive,
    // listed in /metrics (at 0) from the start
    Layer.effectDiscard(Effect.all([Metric.incrementBy(logWriteStalls, 0), Metric.incrementBy(logWriteStalledSeconds, 0)]))
  )

/** JSON lines of the operator CLI (role `cli`). */
export const LoggingLive = loggingFor("cli")

/**
 * STARTUP once every role of the process is built (put it above them: `Lifecycle.pipe(Layer.provide(roles))`),
 * SHUTDOWN "stopping" when the process starts to shut down (before the roles close), and with `logExit`
 * SHUTDOWN "stopped" as the very last line, with the reason when it was not a clean stop.
 */
export const Lifecycle = Layer.scopedDiscard(
  Effect.acquireRelease(
    Effect.logInfo("started").pipe(Effect.annotateLogs({ type: "STARTUP", pid: process.pid, node: process.version })),
    () => Effect.logInfo("stopping").pipe(Effect.annotateLogs({ type: "SHUTDOWN", phase: "stopping" }))
  )
)

export const logExit = <A, E, R>(program: Effect.Effect<A, E, R>) =>
  Effect.onExit(program, (exit) =>
    exit._tag === "Success" || Cause.isInterruptedOnly(exit.cause)
      ? Effect.logInfo("stopped").pipe(Effect.annotateLogs({ type: "SHUTDOWN", phase: "stopped" }))
      : Effect.logError("stopped on a failure", exit.cause).pipe(Effect.annotateLogs({ type: "SHUTDOWN", phase: "failed" })))
