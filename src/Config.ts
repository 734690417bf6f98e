/** Configuration from the environment, with defaults for local development (README: Configuration). */
import { Config, Redacted } from "effect"

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
  /** Bearer token of the admin API (dead letters). The default is for local development only. */
  adminToken: Config.redacted("ADMIN_TOKEN").pipe(Config.withDefault(Redacted.make("dev-admin-token"))),
  workerGroup: WorkerGroup
})
export type AppConfig = Config.Config.Success<typeof AppConfig>
