/**
 * A fresh PostgreSQL database per test suite (so suites run side by side and re-run without cleanup),
 * migrated like production, dropped when the suite's layer is released.
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { databaseUrl } from "../../src/Config.js"
import { LoggingLive } from "../../src/observability/Logging.js"
import { ensureDatabase, MigrationsLive } from "../../src/Sql.js"

export const baseUrl = databaseUrl()

export const testDatabaseUrl = (suite: string) => {
  const url = new URL(baseUrl)
  url.pathname = `/orders_test_${suite.replace(/\W/g, "_")}_${randomBytes(4).toString("hex")}`
  return url.toString()
}

const adminLayer = () => {
  const url = new URL(baseUrl)
  url.pathname = "/postgres"
  return PgClient.layer({ url: Redacted.make(url.toString()), maxConnections: 1 })
}

export const dropDatabase = (url: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const name = new URL(url).pathname.slice(1)
    yield* sql.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
  }).pipe(Effect.provide(adminLayer()), Effect.orDie)

/** PgClient + SqlClient on a new, migrated database named after the suite; the URL is exposed too. */
export const TestDatabase = (suite: string, url = testDatabaseUrl(suite)) =>
  Layer.unwrapScoped(
    Effect.acquireRelease(ensureDatabase(Redacted.make(url)), () => dropDatabase(url)).pipe(
      Effect.as(Layer.fresh(MigrationsLive).pipe(Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), maxConnections: 10 }))))
    )
  ).pipe(Layer.orDie)

/**
 * `layer` over a fresh test database, with the SqlClient exposed. Fresh: a layer constant shared by two suites
 * of one file was seen memoized across their builds (bound to the first suite's database); Layer.fresh stops that.
 */
export const onTestDatabase = <A, E, R>(suite: string, layer: Layer.Layer<A, E, R>, url = testDatabaseUrl(suite)) =>
  Layer.fresh(layer).pipe(Layer.provideMerge(TestDatabase(suite, url)), Layer.provide(LoggingLive))
