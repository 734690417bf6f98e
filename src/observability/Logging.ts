/**
 * Logs as JSON lines: `{"ts","level","type","msg",...annotations}`. `type` names what happened (STARTUP,
 * STATE_CHANGE, HTTP_ERROR, ...) and comes from the `type` log annotation; other annotations (orderId,
 * eventId, ...) are fields of the line, not interpolated into the message.
 */
import { Cause, Effect, HashMap, Layer, Logger, LogLevel } from "effect"

const jsonLineLogger = (write: (line: string) => void) =>
  Logger.make<unknown, void>(({ annotations, cause, date, logLevel, message }) => {
    const line: Record<string, unknown> = {
      ts: date.toISOString(),
      level: logLevel.label,
      type: "LOG",
      msg: Array.isArray(message) ? message.map(String).join(" ") : String(message)
    }
    for (const [key, value] of HashMap.toEntries(annotations)) line[key] = value
    if (!Cause.isEmpty(cause)) line.cause = Cause.pretty(cause)
    write(JSON.stringify(line) + "\n")
  })

/**
 * Lines written in one turn of the event loop go out as one write (stdout to a file or pipe is a
 * synchronous syscall per write in Node: under load, one per line was a measurable share of the CPU).
 * Flushed at exit; a crash of the process itself can lose at most that turn's lines.
 */
const bufferedStdout = () => {
  let pending: Array<string> = []
  const flush = () => {
    if (pending.length === 0) return
    const text = pending.join("")
    pending = []
    process.stdout.write(text)
  }
  process.on("exit", flush)
  return (line: string) => {
    if (pending.push(line) === 1) setImmediate(flush)
  }
}

/** A level by its name or label, any case: "Warning" or "WARN", "Debug", "None"… (default Info). */
export const parseLogLevel = (level: string | undefined): LogLevel.LogLevel => {
  const wanted = (level ?? "").toLowerCase()
  return LogLevel.allLevels.find((l) => l._tag.toLowerCase() === wanted || l.label.toLowerCase() === wanted) ??
    LogLevel.Info
}

const level = Logger.minimumLogLevel(parseLogLevel(process.env.LOG_LEVEL))

/** Replace the default logger with JSON lines at LOG_LEVEL (default INFO), each written at once. */
export const LoggingLive = Layer.merge(Logger.replace(Logger.defaultLogger, jsonLineLogger((line) => process.stdout.write(line))), level)

/** The same lines, gathered per event-loop turn (the server roles: many lines, nothing else on stdout). */
export const BufferedLoggingLive = Layer.merge(
  Layer.unwrapEffect(Effect.sync(() => Logger.replace(Logger.defaultLogger, jsonLineLogger(bufferedStdout())))),
  level
)
