/**
 * The PostgreSQL connection: creates the database when it is missing, connects a pool, and applies the plain
 * SQL files of `migrations/` (NNNN_name.sql, in order, each once) with the Effect Migrator.
 */
import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { Migrator, SqlClient } from "@effect/sql"
import { PgClient, PgMigrator } from "@effect/sql-pg"
import { Config, Effect, Layer, Redacted } from "effect"
import { fileURLToPath } from "node:url"
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

export const PgLive = (url: Redacted.Redacted<string>, maxConnections = 10) =>
  Layer.unwrapEffect(Effect.as(ensureDatabase(url), PgClient.layer({ url, maxConnections })))

/** Applies pending migrations when built. */
export const MigrationsLive = PgMigrator.layer({ loader: sqlFileLoader(migrationsDirectory) }).pipe(
  Layer.provide(NodeContext.layer)
)

export const DatabaseConfig = Config.all({
  url: DatabaseUrl,
  poolSize: Config.integer("DATABASE_POOL_SIZE").pipe(Config.withDefault(10))
})

/** The database of the configuration (DATABASE_URL), created if missing and migrated; `poolSize` overrides
 * DATABASE_POOL_SIZE (the CLI needs few connections). */
export const DatabaseLive = (poolSize?: number) =>
  Layer.unwrapEffect(
    Effect.map(DatabaseConfig, (config) =>
      MigrationsLive.pipe(Layer.provideMerge(PgLive(config.url, poolSize ?? config.poolSize))))
  )
