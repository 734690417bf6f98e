/**
 * PostgreSQL NOTIFY channels, shared by the statement that sends and the processes that LISTEN.
 * `APPENDS_CHANNEL`: every append statement that wrote events notifies it (delivered at its commit, one per
 * statement, so one per group-committed batch); relays wake on it, order watches re-read on it.
 */
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Schedule, Scope, Stream } from "effect"
import { forkBounded, ShutdownBudgetConfig } from "../Shutdown.js"

export const APPENDS_CHANNEL = "appends"

/**
 * A LISTEN on `channel` that begins at the first run of the returned effect, not before, each notification
 * running `onNotify`; it lives in the scope this was made in, its UNLISTEN bounded at shutdown (`name`, a
 * shutdown step). PostgreSQL hands every notification to every backend listening, and the process parses each:
 * a process nobody in it waits on (an api whose relay is elsewhere and whose clients watch nothing) listens to
 * nothing — with the api, the pipeline and a second of each, a listener too many costs every commit.
 */
export const lazyListen = (name: string, channel: string, onNotify: Effect.Effect<void>) =>
  Effect.gen(function*() {
    const pg = yield* PgClient.PgClient
    const scope = yield* Effect.scope
    const budget = yield* Effect.orDie(ShutdownBudgetConfig)
    let started = false
    // uninterruptible: a caller interrupted between the flag and the finalizer would leave the process never
    // listening, or a listening fiber nobody stops
    return Effect.uninterruptible(Effect.suspend(() => {
      if (started) return Effect.void
      started = true
      return forkBounded(
        name,
        budget.disconnectMs,
        // stopping it runs @effect/sql-pg's UNLISTEN, which waits for the database: bounded (src/Shutdown.ts)
        pg.listen(channel).pipe(
          Stream.runForEach(() => onNotify),
          Effect.retry({ schedule: Schedule.spaced(Duration.seconds(1)) })
        )
      ).pipe(Scope.extend(scope))
    }))
  })
