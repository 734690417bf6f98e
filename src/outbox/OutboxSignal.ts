/**
 * Wakes the relay when an append commits, so publishing has no fixed poll delay on the hot path.
 * In-process: a latch the relay waits on, opened by the order actors after each append. Across processes: the
 * PostgreSQL append statement itself NOTIFYs the appends channel (src/database/Notifications.ts; one per
 * statement, and a group-committed statement holds many orders); every process LISTENs and opens its own latch. (A separate, debounced NOTIFY
 * query after appends cost about one round trip per two orders under load.)
 */
import { PgClient } from "@effect/sql-pg"
import { Context, Duration, Effect, Layer, Schedule, Stream } from "effect"
import { APPENDS_CHANNEL } from "../database/Notifications.js"
import { forkBounded, ShutdownBudgetConfig } from "../Shutdown.js"

export class OutboxSignal extends Context.Tag("OutboxSignal")<OutboxSignal, {
  /** An append committed: wake relays here and in other processes. */
  readonly wake: Effect.Effect<void>
  /** Wait until woken or `timeout` passed (the slow safety-net poll). */
  readonly await: (timeout: Duration.DurationInput) => Effect.Effect<void>
}>() {}

const make = Effect.gen(function*() {
  const latch = yield* Effect.makeLatch(false)
  return OutboxSignal.of({
    wake: latch.open,
    await: (timeout) =>
      latch.await.pipe(
        Effect.timeoutOption(timeout),
        Effect.zipRight(latch.close)
      )
  })
})

/** In-process only (memory layers, tests). */
export const LocalOutboxSignal = Layer.effect(OutboxSignal, make)

/** In-process, and from appends in any process through PostgreSQL LISTEN (the appends NOTIFY). */
export const PgOutboxSignal = Layer.scoped(
  OutboxSignal,
  Effect.gen(function*() {
    const pg = yield* PgClient.PgClient
    const signal = yield* make
    const budget = yield* Effect.orDie(ShutdownBudgetConfig)
    // stopping it runs @effect/sql-pg's UNLISTEN, which waits for the database: bounded (src/Shutdown.ts)
    yield* forkBounded(
      "unlisten (relay wake-ups)",
      budget.disconnectMs,
      pg.listen(APPENDS_CHANNEL).pipe(
        Stream.runForEach(() => signal.wake),
        Effect.retry({ schedule: Schedule.spaced(Duration.seconds(1)) })
      )
    )
    return signal
  })
)
