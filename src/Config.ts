/** Configuration from the environment, with defaults for local development (README: Configuration). */
import { Config, Redacted } from "effect"

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
  /** Bearer token of the admin API (dead letters). The default is for local development only. */
  adminToken: Config.redacted("ADMIN_TOKEN").pipe(Config.withDefault(Redacted.make("dev-admin-token"))),
  workerGroup: Config.string("PAYMENT_WORKER_GROUP").pipe(Config.withDefault("payment-worker"))
})
export type AppConfig = Config.Config.Success<typeof AppConfig>
