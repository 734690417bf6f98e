/**
 * How a process spends SHUTDOWN_TIMEOUT_MS after SIGTERM (docs/ARCHITECTURE.md "Processes"), and the one way a
 * shutdown step is bounded in time.
 */
import { Config, Duration, Effect, Exit } from "effect"
import { ShutdownTimeoutMs } from "./Config.js"

export interface ShutdownBudget {
  /** In-flight work may run this long; what is still running then is interrupted (and redelivered later). */
  readonly graceMs: number
  /** The final offset commit. */
  readonly commitMs: number
  /** Leaving the consumer group (kafkajs `stop`). */
  readonly leaveMs: number
  /** Each disconnect: the consumer's, the producer's, the admin client's, the relay's lock connection's. */
  readonly disconnectMs: number
}

/**
 * The last min(5 s, a third) of the timeout is kept from in-flight work for the steps after it, each bounded by
 * its share — the commit 15 %, leaving the group 30 %, each disconnect 10 % (a process has at most four: the
 * consumer, the producer, the admin client, the relay's lock connection) — so that a broker or a database that
 * does not answer costs each step its share and no more; the rest (15 %) is for closing the pool and the exit.
 */
export const shutdownBudget = (timeoutMs: number): ShutdownBudget => {
  const reserve = Math.min(5_000, timeoutMs / 3)
  return { graceMs: timeoutMs - reserve, commitMs: reserve * 0.15, leaveMs: reserve * 0.3, disconnectMs: reserve * 0.1 }
}

export const ShutdownBudgetConfig = ShutdownTimeoutMs.pipe(Config.map(shutdownBudget))

/**
 * Run a shutdown step for at most `ms`; a failure if it did not finish by then (it is abandoned, not awaited).
 * Finalizers run uninterruptibly, and there `Effect.timeout` alone waits for the step it timed out to stop —
 * which a promise never does: the step is made interruptible, so the timeout really ends it.
 */
export const within = <A, E>(ms: number, step: Effect.Effect<A, E>): Effect.Effect<Exit.Exit<A, unknown>> =>
  Effect.interruptible(step).pipe(Effect.timeout(Duration.millis(ms)), Effect.exit)

/**
 * A shutdown step that may not outlast its share: abandoned when it does, with a SHUTDOWN_STEP_TIMEOUT line (the
 * process is exiting: nothing would scrape a metric of it). Whether it finished in time.
 */
export const shutdownStep = <A, E>(name: string, ms: number, step: Effect.Effect<A, E>): Effect.Effect<boolean> =>
  Effect.flatMap(within(ms, step), (exit) =>
    Exit.isSuccess(exit)
      ? Effect.succeed(true)
      : Effect.as(
        Effect.logWarning(`shutdown step "${name}" did not finish within ${Math.round(ms)} ms: abandoned`).pipe(
          Effect.annotateLogs({ type: "SHUTDOWN_STEP_TIMEOUT", step: name, ms: Math.round(ms) })
        ),
        false
      ))
