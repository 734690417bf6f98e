/**
 * How a process spends SHUTDOWN_TIMEOUT_MS after SIGTERM (docs/ARCHITECTURE.md "Processes"), and the one way a
 * shutdown step is bounded in time.
 */
import { Cause, Config, Duration, Effect, Exit, Fiber, Layer, Option, Scope } from "effect"
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
 * The same disconnect share bounds each UNLISTEN, the projector's stop, the pool's close and the tracing flush;
 * the roles as a whole are bounded too (src/main.ts), so no step nobody bounded can reach the backstop.
 */
export const shutdownBudget = (timeoutMs: number): ShutdownBudget => {
  const reserve = Math.min(5_000, timeoutMs / 3)
  return { graceMs: timeoutMs - reserve, commitMs: reserve * 0.15, leaveMs: reserve * 0.3, disconnectMs: reserve * 0.1 }
}

export const ShutdownBudgetConfig = ShutdownTimeoutMs.pipe(Config.map(shutdownBudget))

/**
 * Run a shutdown step for at most `ms`; a failure (a TimeoutException) if it did not finish by then: it is
 * abandoned, not awaited. Finalizers run uninterruptibly, and there `Effect.timeout` alone waits for the step it
 * timed out to stop, and interrupting a step waits for its own uninterruptible parts (a query's cancel, a
 * library's finalizer): the step is made interruptible and run disconnected, so the timeout returns at `ms`
 * and the interruption finishes in the background (or never, when the process exits first).
 */
export const within = <A, E>(ms: number, step: Effect.Effect<A, E>): Effect.Effect<Exit.Exit<A, unknown>> =>
  Effect.interruptible(step).pipe(
    Effect.disconnect,
    Effect.interruptible,
    Effect.timeout(Duration.millis(ms)),
    Effect.exit
  )

/** Whether `within` gave up on its step (rather than the step failing by itself in time). */
export const timedOut = (exit: Exit.Exit<unknown, unknown>): boolean =>
  Exit.isFailure(exit) && Option.exists(Cause.failureOption(exit.cause), (e) => Cause.isTimeoutException(e))

/**
 * A shutdown step that may not outlast its share: abandoned when it does, with a SHUTDOWN_STEP_TIMEOUT line; a
 * step that failed in time says so with SHUTDOWN_STEP_FAILED and its cause (the process is exiting: nothing
 * would scrape a metric of it). Whether it finished, and in time.
 */
export const shutdownStep = <A, E>(name: string, ms: number, step: Effect.Effect<A, E>): Effect.Effect<boolean> =>
  Effect.flatMap(within(ms, step), (exit) =>
    Exit.isSuccess(exit)
      ? Effect.succeed(true)
      : timedOut(exit)
      ? Effect.as(
        Effect.logWarning(`shutdown step "${name}" did not finish within ${Math.round(ms)} ms: abandoned`).pipe(
          Effect.annotateLogs({ type: "SHUTDOWN_STEP_TIMEOUT", step: name, ms: Math.round(ms) })
        ),
        false
      )
      : Effect.as(
        Effect.logWarning(`shutdown step "${name}" failed`).pipe(
          Effect.annotateLogs({ type: "SHUTDOWN_STEP_FAILED", step: name, cause: Cause.pretty(exit.cause).slice(0, 1000) })
        ),
        false
      ))

/**
 * A layer whose release is one shutdown step: its scope is closed by `shutdownStep(name, ms, …)`, so what its
 * finalizers wait for (a library's close, an UNLISTEN, a server draining requests) cannot hold the process
 * past `ms`. (The library's finalizers cannot be reached from outside: they are bounded here, around them.)
 */
export const boundedRelease = <A, E, R>(name: string, ms: number, layer: Layer.Layer<A, E, R>): Layer.Layer<A, E, R> =>
  Layer.scopedContext(Effect.gen(function*() {
    const scope = yield* Scope.make()
    yield* Effect.addFinalizer((exit) => shutdownStep(name, ms, Scope.close(scope, exit)))
    return yield* Layer.buildWithScope(layer, scope)
  }))

/** The same for a forked loop: interrupting it (and waiting for its finalizers) is bounded by `ms`. The loop is
 * interruptible even when forked inside an uninterruptible region (a fiber inherits it: its stop would wait
 * for ever — lazyListen's did, 80478c9). */
export const forkBounded = <A, E, R>(name: string, ms: number, loop: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.forkDaemon(Effect.interruptible(loop)), (fiber) =>
    Effect.asVoid(Effect.addFinalizer(() => shutdownStep(name, ms, Fiber.interrupt(fiber)))))
