/**
 * PostgreSQL NOTIFY channels, shared by the statement that sends and the processes that LISTEN.
 * `APPENDS_CHANNEL`: every append statement that wrote events notifies it (delivered at its commit, one per
 * statement, so one per group-committed batch); relays wake on it, order watches re-read on it.
 */
import { SqlError } from "@effect/sql/SqlError"
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Metric, Scope, Stream } from "effect"
import Pg from "pg"
import { forkBounded, ShutdownBudgetConfig } from "../Shutdown.js"
import { connectionSettings, DatabaseTimeoutsConfig } from "../Sql.js"

export const APPENDS_CHANNEL = "appends"

/** LISTEN connections lost or not made (each retried, each a LISTEN_FAILED line). */
export const listenFailures = Metric.counter("db_listen_failures_total", {
  description: "LISTEN connections that failed, were closed by the server or could not be made (each retried)",
  incremental: true
})

/** End a LISTEN connection we are done with: its events no longer reach the stream, a late socket error is
 * dropped. */
const close = (client: Pg.Client) => {
  client.removeAllListeners()
  client.on("error", () => {})
  return client.end().catch(() => {})
}

/**
 * The notifications of `channel` on a connection of its own (opened as the pool's: `connectionSettings`), each
 * an element, and one more once the LISTEN is active. The stream fails when that connection fails or is
 * closed (a restarted or failed-over server, a terminated backend, a broken socket): @effect/sql-pg's `listen`
 * swallows its connection's errors and keeps the dead connection, so its stream then waits for ever — what
 * the process waited on silently fell back to its poll, and order watches to theirs.
 */
const listenConnection = (settings: Pg.ClientConfig, channel: string, closeMs: number, connected: () => void) =>
  Stream.asyncPush<string, SqlError>((emit) =>
    Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          const client = new Pg.Client({
            ...settings,
            application_name: `${settings.application_name} (listen)`,
            // a peer gone without a word (a dead host) is found by the kernel, not left listening for ever
            keepAlive: true,
            keepAliveInitialDelayMillis: 10_000
          })
          const lost = (why: string) => (cause?: unknown) =>
            void emit.fail(new SqlError({ cause, message: `the LISTEN connection ${why}` }))
          client.on("error", lost("failed"))
          client.on("end", lost("was closed"))
          client.on("notification", (message) => {
            if (message.channel === channel) emit.single(message.payload ?? "")
          })
          try {
            // bounded as the pool's connections (DATABASE_ACQUIRE_TIMEOUT_MS, DATABASE_QUERY_TIMEOUT_MS): a server
            // that stops answering between the connect and the LISTEN fails this attempt, it does not hold it
            await client.connect()
            await client.query(`LISTEN ${client.escapeIdentifier(channel)}`)
          } catch (cause) {
            void close(client)
            throw cause
          }
          // listening: one element for what committed before the LISTEN was active (since the waiter's last
          // read, or while nobody listened after a loss)
          emit.single("")
          connected()
          return client
        },
        catch: (cause) => new SqlError({ cause, message: `could not LISTEN on ${channel}` })
      }),
      // no UNLISTEN: ending the session ends its LISTEN; bounded, for a server that answers nothing
      (client) => Effect.promise(() => close(client)).pipe(Effect.interruptible, Effect.timeoutOption(closeMs))
    )
  )

/** After the n-th failure in a row: 100 ms, doubling, at most 2 s (back to 100 ms once a LISTEN is up). */
const retryDelayMs = (inARow: number) => Math.min(2_000, 100 * 2 ** Math.max(0, inARow - 1))

/**
 * A LISTEN on `channel` that begins at the first run of the returned effect, not before, each notification
 * running `onNotify`; it lives in the scope this was made in, its connection closed at shutdown (`name`, a
 * shutdown step, bounded). PostgreSQL hands every notification to every backend listening, and the process
 * parses each: a process nobody in it waits on (an api whose relay is elsewhere and whose clients watch
 * nothing) listens to nothing — with the api, the pipeline and a second of each, a listener too many costs
 * every commit. `onNotify` also runs once each time the LISTEN is up (what committed before it). A lost
 * connection is logged (LISTEN_FAILED), counted and made again (`retryDelayMs`).
 */
export const lazyListen = (name: string, channel: string, onNotify: Effect.Effect<void>) =>
  Effect.gen(function*() {
    const pg = yield* PgClient.PgClient
    const scope = yield* Effect.scope
    const budget = yield* Effect.orDie(ShutdownBudgetConfig)
    if (pg.config.url === undefined) return yield* Effect.dieMessage("lazyListen: the PgClient has no URL to open its LISTEN connection with")
    const settings = connectionSettings(pg.config.url, yield* Effect.orDie(DatabaseTimeoutsConfig))
    let started = false
    let failures = 0
    let inARow = 0
    const failed = (error: SqlError) =>
      Effect.suspend(() => {
        failures++
        inARow++
        return Effect.logWarning("the LISTEN connection is lost; listening again").pipe(
          Effect.annotateLogs({ type: "LISTEN_FAILED", channel, error: `${error.message}: ${String(error.cause)}`, failures }),
          Effect.zipRight(Metric.increment(Metric.tagged(listenFailures, "channel", channel))),
          Effect.zipRight(Effect.suspend(() => Effect.sleep(Duration.millis(retryDelayMs(inARow)))))
        )
      })
    const listening = listenConnection(settings, channel, Math.max(1_000, budget.disconnectMs), () => (inARow = 0)).pipe(
      Stream.runForEach(() => onNotify),
      Effect.catchAll(failed),
      Effect.forever
    )
    // uninterruptible: a caller interrupted between the flag and the finalizer would leave the process never
    // listening, or a listening fiber nobody stops (forkBounded makes the loop itself interruptible)
    return Effect.uninterruptible(Effect.suspend(() => {
      if (started) return Effect.void
      started = true
      return forkBounded(name, budget.disconnectMs, listening).pipe(Scope.extend(scope))
    }))
  })
