/**
 * The PostgreSQL connection: creates the database when it is missing, connects a pool, and applies the plain
 * SQL files of `migrations/` (NNNN_name.sql, in order, each once) with the Effect Migrator.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { NodeContext } from "@effect/platform-node"
import * as Reactivity from "@effect/experimental/Reactivity"
import { Migrator, SqlClient } from "@effect/sql"
import { PgClient, PgMigrator } from "@effect/sql-pg"
import { SqlError } from "@effect/sql/SqlError"
import { Config, Context, Effect, Layer, Redacted } from "effect"
import { fileURLToPath } from "node:url"
import * as Pg from "pg"
import { DatabaseUrl } from "./Config.js"

export const migrationsDirectory = fileURLToPath(new URL("../migrations", import.meta.url))

const migrationFile = /^(\d+)_(.+)\.sql$/

/** Migrator loader for plain SQL files: each file runs as one multi-statement query inside the migration tx. */
export const sqlFileLoader = (directory: string): Migrator.Loader<FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const files = (yield* fs.readDirectory(directory)).filter((f) => migrationFile.test(f)).sort()
    return yield* Effect.forEach(files, (file) =>
      Effect.map(fs.readFileString(`${directory}/${file}`), (text): Migrator.ResolvedMigration => {
        const [, id, name] = migrationFile.exec(file)!
        return [Number(id), name!, Effect.succeed(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(text)))]
      }))
  }).pipe(Effect.mapError((e) => new Migrator.MigrationError({ reason: "failed", message: e.message })))

/** Highest migration id among the files: readiness requires the database to have applied it. */
export const latestMigrationId = Effect.map(
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readDirectory(migrationsDirectory)),
  (files) => Math.max(0, ...files.flatMap((f) => migrationFile.exec(f)?.[1] ?? []).map(Number))
).pipe(Effect.orDie)

/** Highest migration id the database has applied (0 before the first); fails with SqlError when it does not answer. */
export const appliedMigrationId = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ applied: number | null }>`SELECT max(migration_id)::int AS applied FROM effect_sql_migrations`.pipe(
    Effect.map(([row]) => row?.applied ?? 0)
  ))

/** CREATE DATABASE when the one named by the URL is missing (connecting to the `postgres` database for it). */
export const ensureDatabase = (url: Redacted.Redacted<string>) =>
  Effect.gen(function*() {
    const target = new URL(Redacted.value(url))
    const name = decodeURIComponent(target.pathname.slice(1))
    if (name === "" || name === "postgres") return
    const admin = new URL(target)
    admin.pathname = "/postgres"
    yield* Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const found = yield* sql`SELECT 1 FROM pg_database WHERE datname = ${name}`
      if (found.length > 0) return
      yield* sql.unsafe(`CREATE DATABASE "${name.replaceAll("\"", "\"\"")}"`).pipe(
        // another process created it meanwhile
        Effect.catchIf((e) => ["42P04", "23505"].includes((e.cause as { code?: string })?.code ?? ""), () => Effect.void),
        Effect.zipRight(Effect.logInfo("created database").pipe(Effect.annotateLogs({ type: "STARTUP", database: name })))
      )
    }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(admin.toString()), maxConnections: 1 })))
  }).pipe(Effect.orDie)

/**
 * How long the database may take (docs/OPERATIONS.md "Configuration"; 0 turns a bound off). The server-side
 * bounds (statement_timeout, idle_in_transaction_session_timeout) end what a live server runs too long; a
 * server that answers nothing at all (a stopped backend, a dead host) cannot run them, so every statement is
 * also bounded by the client (`queryTimeoutMs`, node-postgres's query_timeout, a little above the server's so
 * that the server's 57014 comes first when it can) and so is every wait for a pooled connection and every
 * connect (`acquireTimeoutMs`).
 */
export interface DatabaseTimeouts {
  readonly statementTimeoutMs: number
  readonly idleInTransactionTimeoutMs: number
  readonly queryTimeoutMs: number
  readonly acquireTimeoutMs: number
}

export const DatabaseTimeoutsConfig = Config.all({
  statementTimeoutMs: Config.integer("DATABASE_STATEMENT_TIMEOUT_MS").pipe(Config.withDefault(4_000)),
  idleInTransactionTimeoutMs: Config.integer("DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS").pipe(Config.withDefault(10_000)),
  queryTimeoutMs: Config.integer("DATABASE_QUERY_TIMEOUT_MS").pipe(Config.withDefault(5_000)),
  acquireTimeoutMs: Config.integer("DATABASE_ACQUIRE_TIMEOUT_MS").pipe(Config.withDefault(3_000))
})

/** What node-postgres says when a statement outlived query_timeout on the client side. */
export const QUERY_READ_TIMEOUT = "Query read timeout"

/**
 * A pooled connection whose statement timed out on the client side is ended at once: its backend may still
 * run the statement (or hold its transaction open), so the connection must never serve another statement —
 * node-postgres would queue the next one behind the hung one, and a ROLLBACK timed out in that queue would
 * leave the transaction open for the next borrower. Ending it (`end` destroys the socket of a client with an
 * active query) makes the pool drop it; the server rolls back whatever the session had open when it notices.
 */
class EndOnQueryTimeout extends Pg.Client {
  override query(...args: Array<any>): any {
    const last = args.length - 1
    const callback = args[last]
    if (typeof callback === "function") {
      args[last] = (error: Error | undefined, result: unknown) => {
        if (error?.message === QUERY_READ_TIMEOUT) this.end().catch(() => {})
        callback(error, result)
      }
    }
    return (super.query as (...a: Array<any>) => unknown)(...args)
  }
}

const positive = (ms: number | undefined) => (ms !== undefined && ms > 0 ? ms : undefined)

/** What a connection of ours is opened with: the database's URL and the bounds above (0 or none: unbounded) —
 * the pool's and the LISTEN connection's (src/database/Notifications.ts). */
export const connectionSettings = (url: Redacted.Redacted<string>, timeouts?: DatabaseTimeouts): Pg.ClientConfig => ({
  connectionString: Redacted.value(url),
  application_name: "orders-es",
  statement_timeout: positive(timeouts?.statementTimeoutMs),
  idle_in_transaction_session_timeout: positive(timeouts?.idleInTransactionTimeoutMs),
  query_timeout: positive(timeouts?.queryTimeoutMs),
  connectionTimeoutMillis: positive(timeouts?.acquireTimeoutMs)
} as Pg.ClientConfig)

/** A node-postgres pool with the bounds above, ended (at most `acquireTimeoutMs`, 1 s without) with the scope. */
const boundedPool = (url: Redacted.Redacted<string>, maxConnections: number, timeouts?: DatabaseTimeouts) =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      const pool = new Pg.Pool({
        ...connectionSettings(url, timeouts),
        max: maxConnections,
        Client: EndOnQueryTimeout as unknown as typeof Pg.Client
      } as Pg.PoolConfig)
      pool.on("error", () => {})
      return Effect.tryPromise({
        try: () => pool.query("SELECT 1"),
        catch: (cause) => new SqlError({ cause, message: "PgClient: Failed to connect" })
      }).pipe(
        Effect.timeoutFail({
          duration: positive(timeouts?.acquireTimeoutMs) ?? 5_000,
          onTimeout: () => new SqlError({ cause: new Error("Connection timed out"), message: "PgClient: Connection timed out" })
        }),
        Effect.onError(() => Effect.sync(() => void pool.end().catch(() => {}))),
        Effect.as(pool)
      )
    }),
    // a pool whose backends answer nothing would wait for each client's goodbye: bounded, the sockets die with
    // the process
    (pool) =>
      Effect.promise(() => pool.end().catch(() => {})).pipe(Effect.interruptible, Effect.disconnect, Effect.interruptible, Effect.timeoutOption(1_000))
  )

export const PgLive = (url: Redacted.Redacted<string>, maxConnections = 10, timeouts?: DatabaseTimeouts) =>
  Layer.unwrapEffect(Effect.as(
    ensureDatabase(url),
    Layer.scopedContext(Effect.map(
      PgClient.fromPool({ acquire: boundedPool(url, maxConnections, timeouts), applicationName: "orders-es" }),
      (client) => Context.make(PgClient.PgClient, client).pipe(Context.add(SqlClient.SqlClient, client))
    )).pipe(Layer.provide(Reactivity.layer))
  ))

/** Applies pending migrations when built. */
export const MigrationsLive = PgMigrator.layer({ loader: sqlFileLoader(migrationsDirectory) }).pipe(
  Layer.provide(NodeContext.layer)
)

export const DatabaseConfig = Config.all({
  url: DatabaseUrl,
  poolSize: Config.integer("DATABASE_POOL_SIZE").pipe(Config.withDefault(10)),
  timeouts: DatabaseTimeoutsConfig
})

/** The database of the configuration (DATABASE_URL), created if missing and migrated; `poolSize` overrides
 * DATABASE_POOL_SIZE (the CLI needs few connections). `unbounded`: no statement, query or idle-in-transaction
 * timeouts — for an operator's one-off command (`migrate`, the CLI's rebuild and verify), whose statements may
 * rightly take longer than a request's; the acquire timeout still applies. */
export const DatabaseLive = (poolSize?: number, options?: { readonly unbounded?: boolean }) =>
  Layer.unwrapEffect(
    Effect.map(DatabaseConfig, (config) => {
      const timeouts = options?.unbounded === true
        ? { ...config.timeouts, statementTimeoutMs: 0, idleInTransactionTimeoutMs: 0, queryTimeoutMs: 0 }
        : config.timeouts
      return MigrationsLive.pipe(Layer.provideMerge(PgLive(config.url, poolSize ?? config.poolSize, timeouts)))
    })
  )
