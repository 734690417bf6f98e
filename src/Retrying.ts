/**
 * `Effect.retry` that costs nothing until something fails: Effect's retry builds its schedule's driver (refs,
 * a clock read) before the first attempt — ~9 µs on every call, and most calls succeed at once (a provider call,
 * a consumed message's handling: issue 24). Here the first attempt runs bare; its failure, if any, is handed to
 * `Effect.retry` as that retry's first attempt (replayed, not run again), so the attempts, the delays between
 * them and the `while` test are exactly those of `Effect.retry(self, options)`.
 */
import { Effect, type Schedule } from "effect"

export const retryAfterFailure = <A, E, R, Out, RS>(
  self: Effect.Effect<A, E, R>,
  options: { readonly schedule: Schedule.Schedule<Out, E, RS>; readonly while: (error: E) => boolean }
): Effect.Effect<A, E, R | RS> =>
  Effect.catchAll(self, (first) => {
    let replay = true
    return Effect.retry(
      Effect.suspend(() => {
        if (!replay) return self
        replay = false
        return Effect.fail(first)
      }),
      options
    )
  })
