/**
 * `withFields` (src/observability/Logging.ts): a message carrying its line's fields writes the line that
 * `Effect.annotateLogs` around the log writes — the hot paths' lines (STATE_CHANGE, PAYMENT_RESULT) use it to
 * skip annotating (issue 24) and must not change what an operator reads.
 */
import { Effect, HashMap, Logger } from "effect"
import { describe, expect, it } from "vitest"
import { jsonLineLogger, lineFields, logInfoWithFields, withFields } from "../../src/observability/Logging.js"
import { exportingSpans } from "../../src/observability/Tracing.js"
import { collectLogTypes } from "../support/logTypes.js"

const linesOf = (program: Effect.Effect<void>) => {
  const lines: Array<Record<string, unknown>> = []
  Effect.runSync(program.pipe(
    Effect.provide(Logger.replace(Logger.defaultLogger, jsonLineLogger("api", (line) => void lines.push(JSON.parse(line)))))
  ))
  return lines.map(({ ts, ...rest }) => (typeof ts === "string" ? rest : { ts, ...rest }))
}

const fields = { type: "STATE_CHANGE", orderId: "o-1", from: null, to: "PENDING", version: 1, role: "worker" }

describe("log lines with fields of their own", () => {
  it("write the line annotating would, under the fiber's own annotations", () => {
    const outer = <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.annotateLogs(self, { role: "relay", correlationId: "c-1" })
    const annotated = linesOf(outer(Effect.logInfo("state changed").pipe(Effect.annotateLogs(fields))))
    const carried = linesOf(outer(Effect.logInfo(withFields("state changed", fields))))
    expect(carried).toEqual(annotated)
    expect(carried).toEqual([{
      level: "INFO",
      service: "orders-es",
      msg: "state changed",
      correlationId: "c-1",
      ...fields
    }])
  })

  it("are filtered by the level as any line, and read by loggers that collect types", () => {
    expect(linesOf(Effect.logDebug(withFields("state changed", fields)))).toEqual([])
    const types: Array<string> = []
    Effect.runSync(Effect.logInfo(withFields("payment result", { type: "PAYMENT_RESULT" })).pipe(
      Effect.provide(Logger.replace(Logger.defaultLogger, collectLogTypes(types)))
    ))
    expect(types).toEqual(["PAYMENT_RESULT"])
    expect(String(withFields("payment result", {}))).toBe("payment result")
    expect(lineFields(HashMap.make(["type", "LOG"]), ["plain", withFields("x", { type: "STATE_CHANGE" })])).toEqual({ type: "STATE_CHANGE" })
  })

  it("are annotated when tracing is on: the span's event has the fields as attributes (Effect's tracer logger)", () => {
    const spanEvents = (tracing: boolean) =>
      Effect.runSync(Effect.gen(function*() {
        yield* logInfoWithFields("state changed", { type: "STATE_CHANGE", orderId: "o-1" })
        const span = yield* Effect.currentSpan
        return (span as unknown as { events: Array<[string, bigint, Record<string, unknown>]> }).events
          .map(([name, , attributes]) => [name, attributes.type ?? null, attributes.orderId ?? null])
      }).pipe(
        Effect.withSpan("test"),
        tracing ? Effect.provide(exportingSpans) : (self) => self,
        Effect.provide(Logger.replace(Logger.defaultLogger, Logger.none))
      ))
    expect(spanEvents(true)).toEqual([["state changed", "STATE_CHANGE", "o-1"]])
    // (with tracing off no span is made on the hot paths: `traced`; here one is, and shows what it would lose)
    expect(spanEvents(false)[0]![1]).toBeNull()
  })
})
