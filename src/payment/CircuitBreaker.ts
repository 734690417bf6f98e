/**
 * Circuit breaker around the payment provider (docs/ARCHITECTURE.md "Payment worker"). Closed: calls pass;
 * `threshold` transient failures in a row open it. Open: calls fail fast with BreakerOpen for `cooldown` — the
 * payment process makes no call and records a retry due when the probe may go (PaymentProcess.ts); nothing
 * waits and no message is held. Then one probe call is let through (half-open): success closes the breaker,
 * failure opens it again. A BreakerOpen never counts against a payment's attempts.
 */
import { Clock, Data, Duration, Effect, Metric } from "effect"

export class BreakerOpen extends Data.TaggedError("BreakerOpen")<{ readonly retryAfterMs: number }> {}

export interface BreakerOptions {
  readonly threshold: number
  readonly cooldown: Duration.DurationInput
}

type State =
  | { readonly _tag: "Closed"; readonly failures: number }
  | { readonly _tag: "Open"; readonly until: number }
  | { readonly _tag: "HalfOpen" }

export const breakerOpened = Metric.counter("payment_breaker_opened_total", {
  description: "times the payment circuit breaker opened",
  incremental: true
})

export const makeCircuitBreaker = (options: BreakerOptions) =>
  Effect.sync(() => {
    const cooldownMs = Duration.toMillis(options.cooldown)
    let state: State = { _tag: "Closed", failures: 0 }

    const open = (now: number) =>
      Effect.suspend(() => {
        state = { _tag: "Open", until: now + cooldownMs }
        return Effect.logWarning("circuit breaker open").pipe(
          Effect.annotateLogs({ type: "BREAKER_OPEN", cooldownMs }),
          Effect.zipRight(Metric.increment(breakerOpened))
        )
      })

    const run = <A, E extends { readonly _tag: string }>(call: Effect.Effect<A, E>, isTransient: (e: E) => boolean) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        let probe = false
        if (state._tag === "Open") {
          if (now < state.until) return yield* new BreakerOpen({ retryAfterMs: state.until - now })
          state = { _tag: "HalfOpen" }
          probe = true
        } else if (state._tag === "HalfOpen") {
          return yield* new BreakerOpen({ retryAfterMs: 50 })
        }
        return yield* call.pipe(
          Effect.tap(() =>
            Effect.suspend(() => {
              if (probe) {
                return Effect.logInfo("circuit breaker closed").pipe(
                  Effect.annotateLogs({ type: "BREAKER_CLOSED" }),
                  Effect.zipRight(Effect.sync(() => state = { _tag: "Closed", failures: 0 }))
                )
              }
              if (state._tag === "Closed") state = { _tag: "Closed", failures: 0 }
              return Effect.void
            })
          ),
          Effect.tapError((e) =>
            Effect.gen(function*() {
              if (!isTransient(e)) return
              const at = yield* Clock.currentTimeMillis
              if (probe) return yield* open(at)
              if (state._tag === "Closed") {
                const failures = state.failures + 1
                if (failures >= options.threshold) yield* open(at)
                else state = { _tag: "Closed", failures }
              }
            })
          ),
          // a probe's failure is the breaker's, not the message's: report it as BreakerOpen
          Effect.catchIf((e) => probe && isTransient(e), () => Effect.fail(new BreakerOpen({ retryAfterMs: cooldownMs })))
        )
      })

    return {
      run,
      state: () => state._tag,
      /** How long calls will still be refused (0: the next call goes through, or is the probe). */
      refusedFor: Effect.map(Clock.currentTimeMillis, (now) => state._tag === "Open" ? Math.max(0, state.until - now) : 0)
    } as const
  })

export type CircuitBreaker = Effect.Effect.Success<ReturnType<typeof makeCircuitBreaker>>
