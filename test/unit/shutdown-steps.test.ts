/**
 * Shutdown steps (src/Shutdown.ts): a step that does not finish in its share is abandoned at the share — even
 * when what it waits for is uninterruptible (a library's finalizer, a query's cancel) and even when it runs in
 * a finalizer — and logged SHUTDOWN_STEP_TIMEOUT; a step that failed in time is SHUTDOWN_STEP_FAILED with its
 * cause; a layer released through `boundedRelease` is one such step.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Logger, Scope } from "effect"
import { boundedRelease, shutdownStep } from "../../src/Shutdown.js"

const captured = () => {
  const lines: Array<Record<string, unknown>> = []
  const logger = Logger.make(({ annotations }) => void lines.push(Object.fromEntries(annotations)))
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
}

/** An effect that never finishes and cannot be interrupted (what a finalizer awaiting a hung database is). */
const stuck = Effect.uninterruptible(Effect.never)

describe("shutdown steps", () => {
  it.live("an uninterruptible step, run in a finalizer, is abandoned at its share: SHUTDOWN_STEP_TIMEOUT", () =>
    Effect.gen(function*() {
      const log = captured()
      const started = Date.now()
      const done = yield* Effect.scoped(Effect.addFinalizer(() => shutdownStep("stuck", 200, stuck))).pipe(
        Effect.provide(log.layer),
        Effect.timeout("3 seconds"),
        Effect.either
      )
      assert.isTrue(done._tag === "Right", "the scope closed")
      assert.isAtMost(Date.now() - started, 1_500)
      assert.deepStrictEqual(log.lines.map((l) => [l.type, l.step]), [["SHUTDOWN_STEP_TIMEOUT", "stuck"]])
    }))

  it.live("a step that fails in time: SHUTDOWN_STEP_FAILED with its cause, not a timeout", () =>
    Effect.gen(function*() {
      const log = captured()
      const finished = yield* shutdownStep("refused", 1_000, Effect.fail(new Error("Connection terminated"))).pipe(
        Effect.provide(log.layer)
      )
      assert.isFalse(finished)
      assert.strictEqual(log.lines.length, 1)
      assert.strictEqual(log.lines[0]!.type, "SHUTDOWN_STEP_FAILED")
      assert.include(String(log.lines[0]!.cause), "Connection terminated")
    }))

  it.live("boundedRelease: a layer whose finalizer hangs is released within its share", () =>
    Effect.gen(function*() {
      const log = captured()
      const hanging = Layer.scopedDiscard(Effect.addFinalizer(() => stuck))
      const scope = yield* Scope.make()
      // (a finalizer logs with the logger of the build)
      yield* Layer.buildWithScope(boundedRelease("hanging close", 200, hanging), scope).pipe(Effect.provide(log.layer))
      const started = Date.now()
      yield* Scope.close(scope, Exit.void).pipe(Effect.timeout("3 seconds"))
      assert.isAtMost(Date.now() - started, 1_500)
      assert.deepStrictEqual(log.lines.map((l) => l.type), ["SHUTDOWN_STEP_TIMEOUT"])
    }))
})
