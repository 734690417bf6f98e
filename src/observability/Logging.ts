/**
 * Logs as JSON lines: `{"ts","level","type","msg",...annotations}`. `type` names what happened (STARTUP,
 * STATE_CHANGE, HTTP_ERROR, ...) and comes from the `type` log annotation; other annotations (orderId,
 * eventId, ...) are fields of the line, not interpolated into the message.
 */
import { Cause, HashMap, Layer, Logger, LogLevel } from "effect"

const jsonLineLogger = Logger.make<unknown, void>(({ annotations, cause, date, logLevel, message }) => {
  const line: Record<string, unknown> = {
    ts: date.toISOString(),
    level: logLevel.label,
    type: "LOG",
    msg: Array.isArray(message) ? message.map(String).join(" ") : String(message)
  }
  for (const [key, value] of HashMap.toEntries(annotations)) line[key] = value
  if (!Cause.isEmpty(cause)) line.cause = Cause.pretty(cause)
  process.stdout.write(JSON.stringify(line) + "\n")
})

/** A level by its name or label, any case: "Warning" or "WARN", "Debug", "None"… (default Info). */
export const parseLogLevel = (level: string | undefined): LogLevel.LogLevel => {
  const wanted = (level ?? "").toLowerCase()
  return LogLevel.allLevels.find((l) => l._tag.toLowerCase() === wanted || l.label.toLowerCase() === wanted) ??
    LogLevel.Info
}

/** Replace the default logger with JSON lines at LOG_LEVEL (default INFO). */
export const LoggingLive = Layer.merge(
  Logger.replace(Logger.defaultLogger, jsonLineLogger),
  Logger.minimumLogLevel(parseLogLevel(process.env.LOG_LEVEL))
)
