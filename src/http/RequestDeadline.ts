/**
 * A request's deadline for its work with the database (`DATABASE_REQUEST_TIMEOUT_MS`, 5 s): each statement is
 * bounded (src/Sql.ts), but a request may make several — a refund reads the order, its actor reads the stream
 * and appends — and a pool that gives no connection for 3 s and a statement that answers nothing for 5 s add up
 * to more than a client waits. By the deadline the request is answered 503 (StoreUnavailable → Retry-After),
 * its work interrupted in the background as if the client had hung up: an append in progress is uninterruptible
 * and completes or fails on its own, and every command behind these routes may be sent again (a refund by its
 * Idempotency-Key's derived ids, a cancel by the order's state, a keyed POST by its released claim).
 */
import { Config, Effect, type Exit } from "effect"
import { StoreUnavailable } from "../Infrastructure.js"

export const RequestTimeoutMs = Config.integer("DATABASE_REQUEST_TIMEOUT_MS").pipe(Config.withDefault(5_000))

/** The answer at the deadline. */
export const deadlinePassed = (timeoutMs: number) =>
  new StoreUnavailable({
    causeClass: "DatabaseUnavailable",
    sqlState: undefined,
    message: `the database did not answer within ${timeoutMs} ms (DATABASE_REQUEST_TIMEOUT_MS)`,
    cause: undefined
  })

/**
 * `work`, or `atDeadline` then `timedOut()` once `workMs` passed; the work is then interrupted in the background.
 * One fiber and a timer: `Effect.timeout` over `Effect.disconnect` cost three fibers and a race per POST — 10 %
 * of the api role's CPU per POST (docs/PERFORMANCE.md). `workMs` ≤ 0: no deadline.
 */
export const withinDeadline = <A, E, R>(
  work: Effect.Effect<A, E, R>,
  workMs: number,
  timedOut: () => StoreUnavailable,
  atDeadline: Effect.Effect<void> = Effect.void
): Effect.Effect<A, E | StoreUnavailable, R> =>
  workMs <= 0 ? work : Effect.uninterruptibleMask((restore) =>
    Effect.fiberIdWith((self) =>
      // uninterruptible between the fork and the wait (as Effect.disconnect is): an interruption arriving
      // there is acted on by `onInterrupt` below, never lost with the work left running
      Effect.flatMap(Effect.forkDaemon(restore(work)), (fiber) =>
        restore(Effect.async<A, E | StoreUnavailable>((resume) => {
          const stop = () => {
            clearTimeout(timer)
            fiber.removeObserver(done)
            fiber.unsafeInterruptAsFork(self)
          }
          const done = (exit: Exit.Exit<A, E>) => {
            clearTimeout(timer)
            resume(exit)
          }
          const timer = setTimeout(() => {
            stop()
            resume(Effect.zipRight(atDeadline, Effect.fail(timedOut())))
          }, workMs)
          fiber.addObserver(done)
          return Effect.sync(stop) // the request interrupted: the work too, in the background
        })).pipe(Effect.onInterrupt(() => Effect.sync(() => fiber.unsafeInterruptAsFork(self))))
      )
    )
  )
