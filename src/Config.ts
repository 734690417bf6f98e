/** Configuration from the environment, with defaults for local development (README: Configuration). */
import { Config, Effect, Option, Redacted } from "effect"

export const DEV_ADMIN_TOKEN = "dev-admin-token"

/** The consumer group of the payment worker, also the inbox's consumer name: one per deployment, so two
 * deployments with different topic prefixes on one broker never share a group. */
export const WorkerGroup = Config.all({
  prefix: Config.string("KAFKA_TOPIC_PREFIX").pipe(Config.withDefault("")),
  group: Config.option(Config.string("PAYMENT_WORKER_GROUP"))
}).pipe(Config.map(({ group, prefix }) => group._tag === "Some" ? group.value : `${prefix}payment-worker`))

export const DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/orders"

export const AppConfig = Config.all({
  port: Config.port("PORT").pipe(Config.withDefault(3000)),
  host: Config.string("HOST").pipe(Config.withDefault("0.0.0.0")),
  databaseUrl: Config.redacted("DATABASE_URL").pipe(Config.withDefault(Redacted.make(DEFAULT_DATABASE_URL))),
  databasePoolSize: Config.integer("DATABASE_POOL_SIZE").pipe(Config.withDefault(10)),
  /** Largest accepted request body in bytes (413 above). */
  bodyLimit: Config.integer("BODY_LIMIT").pipe(Config.withDefault(16 * 1024)),
  /** An in-flight Idempotency-Key whose request has not finished after this long may be taken over. */
  idempotencyLeaseMs: Config.integer("IDEMPOTENCY_LEASE_MS").pipe(Config.withDefault(60_000)),
  /** A body not fully received after this long → 408, connection closed. */
  bodyTimeoutMs: Config.integer("BODY_TIMEOUT_MS").pipe(Config.withDefault(5_000)),
  /** Request headers not complete after this long → 408, connection closed. */
  headersTimeoutMs: Config.integer("HEADERS_TIMEOUT_MS").pipe(Config.withDefault(5_000)),
  /** Idempotency-Key records are kept this long (Stripe: 24 h), then deleted by the api role's expiry job. */
  idempotencyTtlMs: Config.integer("IDEMPOTENCY_TTL_MS").pipe(Config.withDefault(24 * 3600_000)),
  idempotencyExpiryIntervalMs: Config.integer("IDEMPOTENCY_EXPIRY_INTERVAL_MS").pipe(Config.withDefault(60_000)),
  /** GET /orders/:id/watch: streams per process (503 beyond), heartbeat period, safety-net poll. */
  watchMaxConnections: Config.integer("WATCH_MAX_CONNECTIONS").pipe(Config.withDefault(1000)),
  watchHeartbeatMs: Config.integer("WATCH_HEARTBEAT_MS").pipe(Config.withDefault(15_000)),
  watchPollMs: Config.integer("WATCH_POLL_MS").pipe(Config.withDefault(500)),
  /** Bearer token of the admin API (dead letters). The default is for local development only. */
  adminToken: Config.redacted("ADMIN_TOKEN").pipe(Config.withDefault(Redacted.make(DEV_ADMIN_TOKEN))),
  workerGroup: WorkerGroup
})
export type AppConfig = Config.Config.Success<typeof AppConfig>

export class StartupRefused extends Error {
  readonly _tag = "StartupRefused"
}

/**
 * The admin API's credentials (issue 12): with NODE_ENV=production the api role refuses to start without an
 * ADMIN_TOKEN of its own (missing, empty, or the development default); otherwise the development default is
 * allowed, with a warning at startup.
 */
export const checkAdminToken = Effect.gen(function*() {
  const production = (yield* Config.string("NODE_ENV").pipe(Config.withDefault(""))) === "production"
  const token = yield* Config.option(Config.redacted("ADMIN_TOKEN"))
  const value = Option.map(token, Redacted.value)
  const usable = Option.isSome(value) && value.value.trim() !== "" && value.value !== DEV_ADMIN_TOKEN
  if (usable) return
  if (production) {
    const reason = Option.isNone(value) || value.value.trim() === "" ? "ADMIN_TOKEN is not set" : "ADMIN_TOKEN is the development default"
    yield* Effect.logError(`refusing to start the api role: ${reason}; set ADMIN_TOKEN to a secret of your own`).pipe(
      Effect.annotateLogs({ type: "STARTUP_REFUSED", role: "api", reason })
    )
    return yield* Effect.fail(new StartupRefused(`${reason} (NODE_ENV=production): set ADMIN_TOKEN to a secret of your own`))
  }
  yield* Effect.logWarning("the admin API uses the development token; set ADMIN_TOKEN outside development").pipe(
    Effect.annotateLogs({ type: "STARTUP_WARNING", role: "api" })
  )
})
