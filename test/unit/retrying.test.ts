/**
 * `retryAfterFailure` (src/Retrying.ts): the same attempts, at the same times, with the same outcome as
 * `Effect.retry` with the same options — it only skips building the schedule's driver until a first failure.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Exit, Fiber, Schedule, TestClock } from "effect"
import { retryAfterFailure } from "../../src/Retrying.js"

type Retry = (
  self: Effect.Effect<number, string>,
  options: { readonly schedule: Schedule.Schedule<unknown, string>; readonly while: (e: string) => boolean }
) => Effect.Effect<number, string>

/** `self` fails with the given errors in turn, then succeeds: when each attempt ran (ms from the start), and the outcome. */
const attempts = (retry: Retry, errors: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const times: Array<number> = []
    const start = yield* Clock.currentTimeMillis
    const self = Effect.gen(function*() {
      times.push((yield* Clock.currentTimeMillis) - start)
      const error = errors[times.length - 1]
      return error === undefined ? times.length : yield* Effect.fail(error)
    })
    const schedule = Schedule.exponential("100 millis").pipe(Schedule.intersect(Schedule.recurs(3)))
    const fiber = yield* Effect.fork(Effect.exit(retry(self, { schedule, while: (e) => e !== "permanent" })))
    yield* TestClock.adjust("1 minute")
    return { times, exit: yield* Fiber.join(fiber) }
  })

describe("retryAfterFailure", () => {
  const cases: ReadonlyArray<ReadonlyArray<string>> = [
    [],
    ["a"],
    ["a", "b"],
    ["a", "b", "c"],
    ["a", "b", "c", "d"],
    ["a", "b", "c", "d", "e"],
    ["permanent"],
    ["a", "permanent", "c"]
  ]
  for (const errors of cases) {
    it.effect(`attempts as Effect.retry's: failures ${JSON.stringify(errors)}`, () =>
      Effect.gen(function*() {
        const reference = yield* attempts((self, options) => Effect.retry(self, options), errors)
        const ours = yield* attempts(retryAfterFailure, errors)
        assert.deepStrictEqual(ours.times, reference.times)
        assert.deepStrictEqual(ours.exit, reference.exit)
        // (the reference itself: a first success at once, a permanent error not retried, at most 1 + 3 tries)
        if (errors.length === 0) assert.deepStrictEqual(reference.exit, Exit.succeed(1))
        assert.isAtMost(reference.times.length, 4)
      }))
  }
})
