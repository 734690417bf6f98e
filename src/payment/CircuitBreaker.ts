/**
 * Circuit breaker around the payment provider (docs/ARCHITECTURE.md "Payment worker"). Closed: calls pass; it
 * opens when the calls finished in the last `window` hold at least `threshold` transient failures *and* those
 * failures are at least `failureRatio` of them — an outage (every call failing) opens it after `threshold`
 * calls, while a provider failing a few percent of calls at any volume never does. (It used to open on
 * `threshold` failures in a row: at 210 orders/s with 5 % transient errors, three in a row came by chance once
 * in ten seconds, and the 464 payments refused during the cooldown took 5.6 s to settle — the benchmark's
 * error step.) Open: calls fail fast with BreakerOpen for `cooldown` — the payment process makes no call and
 * records a retry due when the probe may go (PaymentProcess.ts); nothing waits and no message is held. Then one
 * probe call is let through (half-open): success closes the breaker (and forgets the window), failure opens
 * it again. A BreakerOpen never counts against a payment's attempts.
 */
import { Clock, Data, Duration, Effect, Metric } from "effect"

export class BreakerOpen extends Data.TaggedError("BreakerOpen")<{ readonly retryAfterMs: number }> {}

export interface BreakerOptions {
  /** Transient failures within the window needed to open (an outage opens it after this many calls). */
  readonly threshold: number
  readonly cooldown: Duration.DurationInput
  /** Share of the window's finished calls that must have failed (default 0.5). */
  readonly failureRatio?: number
  /** How far back calls count (default 10 s). */
  readonly window?: Duration.DurationInput
}

type State =
  | { readonly _tag: "Closed" }
  | { readonly _tag: "Open"; readonly until: number }
  | { readonly _tag: "HalfOpen" }

export const breakerOpened = Metric.counter("payment_breaker_opened_total", {
  description: "times the payment circuit breaker opened",
  incremental: true
})

/** Calls finished in the last `windowMs`: when, and whether they failed transiently. */
const makeWindow = (windowMs: number) => {
  const at: Array<number> = []
  const failed: Array<boolean> = []
  let head = 0
  let failures = 0
  const trim = (now: number) => {
    while (head < at.length && at[head]! <= now - windowMs) {
      if (failed[head]) failures--
      head++
    }
    if (head > 1024) {
      at.splice(0, head)
      failed.splice(0, head)
      head = 0
    }
  }
  return {
    record: (now: number, isFailure: boolean) => {
      trim(now)
      at.push(now)
      failed.push(isFailure)
      if (isFailure) failures++
    },
    /** Failures and calls in the window. */
    counts: (now: number) => {
      trim(now)
      return { failures, calls: at.length - head }
    },
    clear: () => {
      at.length = 0
      failed.length = 0
      head = 0
      failures = 0
    }
  }
}

export const makeCircuitBreaker = (options: BreakerOptions) =>
  Effect.sync(() => {
    const cooldownMs = Duration.toMillis(options.cooldown)
    const ratio = options.failureRatio ?? 0.5
    const recent = makeWindow(Duration.toMillis(options.window ?? Duration.seconds(10)))
    let state: State = { _tag: "Closed" }

    const open = (now: number) =>
      Effect.suspend(() => {
        state = { _tag: "Open", until: now + cooldownMs }
        recent.clear()
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
            Effect.gen(function*() {
              if (probe) {
                state = { _tag: "Closed" }
                return yield* Effect.logInfo("circuit breaker closed").pipe(Effect.annotateLogs({ type: "BREAKER_CLOSED" }))
              }
              if (state._tag === "Closed") recent.record(yield* Clock.currentTimeMillis, false)
            })
          ),
          Effect.tapError((e) =>
            Effect.gen(function*() {
              const at = yield* Clock.currentTimeMillis
              // the provider answered (a refusal, not an outage): a call that did not fail transiently
              if (!isTransient(e)) return state._tag === "Closed" && !probe ? recent.record(at, false) : undefined
              if (probe) return yield* open(at)
              if (state._tag !== "Closed") return
              recent.record(at, true)
              const { calls, failures } = recent.counts(at)
              if (failures >= options.threshold && failures >= ratio * calls) yield* open(at)
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
