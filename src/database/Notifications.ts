/**
 * PostgreSQL NOTIFY channels, shared by the statement that sends and the processes that LISTEN.
 * `APPENDS_CHANNEL`: every append statement that wrote events notifies it (delivered at its commit, one per
 * statement, so one per group-committed batch); relays wake on it, order watches re-read on it.
 */
import { SqlError } from "@effect/sql/SqlError"
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Metric, Redacted, Schedule, Scope, Stream } from "effect"
import Pg from "pg"
import { forkBounded, ShutdownBudgetConfig } from "../Shutdown.js"

export const APPENDS_CHANNEL = "appends"

/** LISTEN connections lost or not made (each retried, each a LISTEN_FAILED line). */
export const listenFailures = Metric.counter("db_listen_failures_total", {
  description: "LISTEN connections that failed, were closed by the server or could not be made (each retried)",
  incremental: true
})

/**
 * The notifications of `channel` on a connection of its own. The stream fails when that connection fails or is
 * closed (a restarted or failed-over server, a terminated backend, a broken socket): @effect/sql-pg's `listen`
 * swallows its connection's errors and keeps the dead connection, so its stream then waits for ever — what
 * the process waited on silently fell back to its poll, and order watches to nothing.
 */
const listenConnection = (config: PgClient.PgClientConfig, channel: string, connectMs: number, catchUp: () => boolean) =>
  Stream.asyncPush<string, SqlError>((emit) =>
    Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          const client = new Pg.Client({
            ...(config.url ? { connectionString: Redacted.value(config.url) } : {}),
            ...(config.host ? { host: config.host } : {}),
            ...(config.port ? { port: config.port } : {}),
            ...(config.database ? { database: config.database } : {}),
            ...(config.username ? { user: config.username } : {}),
            ...(config.password ? { password: Redacted.value(config.password) } : {}),
            ...(config.ssl ? { ssl: config.ssl } : {}),
            application_name: `${config.applicationName ?? "orders-es"} (listen)`,
            connectionTimeoutMillis: connectMs,
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
            await client.connect()
            await client.query(`LISTEN ${client.escapeIdentifier(channel)}`)
            // listening again after a loss: one element for what was notified while nobody listened
            if (catchUp()) emit.single("")
          } catch (cause) {
            client.removeAllListeners()
            client.on("error", () => {})
            void client.end().catch(() => {})
            throw cause
          }
          return client
        },
        catch: (cause) => new SqlError({ cause, message: `could not LISTEN on ${channel}` })
      }),
      // no UNLISTEN: ending the session ends its LISTEN; bounded, for a server that answers nothing
      (client) =>
        Effect.promise(() => {
          client.removeAllListeners()
          client.on("error", () => {})
          return client.end().catch(() => {})
        }).pipe(Effect.interruptible, Effect.timeoutOption(connectMs))
    )
  )

/**
 * A LISTEN on `channel` that begins at the first run of the returned effect, not before, each notification
 * running `onNotify`; it lives in the scope this was made in, its connection closed at shutdown (`name`, a
 * shutdown step, bounded). PostgreSQL hands every notification to every backend listening, and the process
 * parses each: a process nobody in it waits on (an api whose relay is elsewhere and whose clients watch
 * nothing) listens to nothing — with the api, the pipeline and a second of each, a listener too many costs
 * every commit. A lost connection is logged (LISTEN_FAILED), counted and made again (after 100 ms, up to 2 s
 * apart); once it is back `onNotify` runs once, for what was notified while nobody listened.
 */
export const lazyListen = (name: string, channel: string, onNotify: Effect.Effect<void>) =>
  Effect.gen(function*() {
    const pg = yield* PgClient.PgClient
    const scope = yield* Effect.scope
    const budget = yield* Effect.orDie(ShutdownBudgetConfig)
    const connectMs = Math.max(1_000, budget.disconnectMs)
    let started = false
    let failures = 0
    const failed = (error: SqlError) =>
      Effect.suspend(() => {
        failures++
        return Effect.logWarning("the LISTEN connection is lost; listening again").pipe(
          Effect.annotateLogs({ type: "LISTEN_FAILED", channel, error: `${error.message}: ${String(error.cause)}`, failures }),
          Effect.zipRight(Metric.increment(Metric.tagged(listenFailures, "channel", channel)))
        )
      })
    const listening = listenConnection(pg.config, channel, connectMs, () => failures > 0).pipe(
      Stream.runForEach(() => onNotify),
      Effect.tapError(failed)
    )
    // uninterruptible: a caller interrupted between the flag and the finalizer would leave the process never
    // listening, or a listening fiber nobody stops
    return Effect.uninterruptible(Effect.suspend(() => {
      if (started) return Effect.void
      started = true
      return forkBounded(
        name,
        budget.disconnectMs,
        // interruptible again: a fiber forked here would inherit the uninterruptible region, and its stop at
        // shutdown would wait for ever (it did: SHUTDOWN_STEP_TIMEOUT "unlisten" at every stop of a relay)
        Effect.interruptible(listening.pipe(
          Effect.retry(Schedule.exponential(Duration.millis(100)).pipe(Schedule.union(Schedule.spaced(Duration.seconds(2)))))
        ))
      ).pipe(Scope.extend(scope))
    }))
  })
