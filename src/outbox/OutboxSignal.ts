/**
 * Wakes the relay when an append commits, so publishing has no fixed poll delay on the hot path.
 * In-process: a latch the relay waits on, opened by the order actors after each append. Across processes: the
 * PostgreSQL append statement itself NOTIFYs the appends channel (src/database/Notifications.ts; one per
 * statement, and a group-committed statement holds many orders); every process with a relay LISTENs (from the relay's
 * first wait) and opens its own latch. (A separate, debounced NOTIFY
 * query after appends cost about one round trip per two orders under load.)
 */
import { Context, type Duration, Effect, Layer } from "effect"
import { APPENDS_CHANNEL, lazyListen } from "../database/Notifications.js"

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

/** In-process, and from appends in any process through PostgreSQL LISTEN (the appends NOTIFY) — listening from
 * the relay's first wait on: a process without a relay takes no notification. */
export const PgOutboxSignal = Layer.scoped(
  OutboxSignal,
  Effect.gen(function*() {
    const signal = yield* make
    const listen = yield* lazyListen("unlisten (relay wake-ups)", APPENDS_CHANNEL, signal.wake)
    return OutboxSignal.of({ wake: signal.wake, await: (timeout) => Effect.zipRight(listen, signal.await(timeout)) })
  })
)
