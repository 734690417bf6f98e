/**
 * Wakes the relay when an append commits, so publishing has no fixed poll delay on the hot path.
 * In-process: a latch the relay waits on. Across processes: a NOTIFY on channel `outbox`, coalesced to at most
 * one per few milliseconds (and never inside the append's transaction, which it would serialize).
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Context, Duration, Effect, Layer, Schedule, Stream } from "effect"

export const OUTBOX_CHANNEL = "outbox"

export class OutboxSignal extends Context.Tag("OutboxSignal")<OutboxSignal, {
  /** An append committed: wake relays here and in other processes. */
  readonly wake: Effect.Effect<void>
  /** Wait until woken or `timeout` passed (the slow safety-net poll). */
  readonly await: (timeout: Duration.DurationInput) => Effect.Effect<void>
}>() {}

const make = (notify: Effect.Effect<void> | undefined) =>
  Effect.gen(function*() {
    const latch = yield* Effect.makeLatch(false)
    let notifyPending = false
    const flush = notify === undefined ? Effect.void : Effect.sleep(Duration.millis(2)).pipe(
      Effect.zipRight(Effect.sync(() => notifyPending = false)),
      Effect.zipRight(notify),
      Effect.catchAllCause(() => Effect.void)
    )
    const signal = OutboxSignal.of({
      wake: Effect.suspend(() => {
        const local = latch.open
        if (notify === undefined || notifyPending) return local
        notifyPending = true
        return Effect.zipRight(local, Effect.forkDaemon(flush))
      }),
      await: (timeout) =>
        latch.await.pipe(
          Effect.timeoutOption(timeout),
          Effect.zipRight(latch.close)
        )
    })
    return { signal, wakeLocal: latch.open }
  })

/** In-process only (memory layers, tests). */
export const LocalOutboxSignal = Layer.effect(OutboxSignal, Effect.map(make(undefined), (s) => s.signal))

/** In-process and across processes through PostgreSQL LISTEN/NOTIFY. */
export const PgOutboxSignal = Layer.scoped(
  OutboxSignal,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const pg = yield* PgClient.PgClient
    const { signal, wakeLocal } = yield* make(
      sql`SELECT pg_notify(${OUTBOX_CHANNEL}, '')`.pipe(Effect.asVoid, Effect.orDie)
    )
    // a NOTIFY from any process (this one included) opens the local latch only: no echo
    yield* pg.listen(OUTBOX_CHANNEL).pipe(
      Stream.runForEach(() => wakeLocal),
      Effect.retry({ schedule: Schedule.spaced(Duration.seconds(1)) }),
      Effect.forkScoped
    )
    return signal
  })
)
