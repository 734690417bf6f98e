/**
 * The environment variables read by more than one module, each declared once with its one default (docs/OPERATIONS.md
 * "Configuration"). A variable only one layer reads is declared beside that layer (RelayConfig in Relay.ts,
 * PlaceOrderConfig in orders/PlaceOrder.ts, WatchConfig in orders/OrderWatch.ts, …) and read through `Config` when the layer is built, so a test
 * swaps the ConfigProvider, never an options object.
 */
import { Config, Effect, Redacted } from "effect"

export const DEV_ADMIN_TOKEN = "dev-admin-token"

/** PostgreSQL (the database is created when missing). Tests, the benchmark and scripts/postgres.sh read this default. */
export const DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/orders"
export const DatabaseUrl = Config.redacted("DATABASE_URL").pipe(Config.withDefault(Redacted.make(DEFAULT_DATABASE_URL)))

/** The DATABASE_URL of this environment, outside an Effect (tests, the benchmark). */
export const databaseUrl = (): string => Redacted.value(Effect.runSync(DatabaseUrl))

/** A TCP port to listen on; 0 asks the OS for a free one (tests). */
export const listenPort = (name: string, fallback: number) =>
  Config.integer(name).pipe(
    Config.validate({ message: "Expected a port number from 0 to 65535", validation: (n) => n >= 0 && n <= 65535 }),
    Config.withDefault(fallback)
  )

/** The interface the process's HTTP server listens on: the api's, or the ops endpoints' of a process without it. */
export const Host = Config.string("HOST").pipe(Config.withDefault("0.0.0.0"))

/** Request headers not complete after this long → 408, connection closed (the api's server and the ops one). */
export const HeadersTimeoutMs = Config.integer("HEADERS_TIMEOUT_MS").pipe(Config.withDefault(5_000))

/** A body not fully received after this long → 408, connection closed (the api's server and the ops one). */
export const BodyTimeoutMs = Config.integer("BODY_TIMEOUT_MS").pipe(Config.withDefault(5_000))

/** Prefix of every topic name (and of the default consumer group). */
export const KafkaTopicPrefix = Config.string("KAFKA_TOPIC_PREFIX").pipe(Config.withDefault(""))

/** The consumer group of the payment worker, also the inbox's consumer name and the group whose lag /metrics
 * reports: one per deployment, so two deployments with different topic prefixes on one broker never share a group. */
export const WorkerGroup = Config.all({
  prefix: KafkaTopicPrefix,
  group: Config.option(Config.string("PAYMENT_WORKER_GROUP"))
}).pipe(Config.map(({ group, prefix }) => group._tag === "Some" ? group.value : `${prefix}payment-worker`))

/** SIGTERM: the process exits by this; the worker interrupts in-flight work a little before (src/Shutdown.ts). */
export const ShutdownTimeoutMs = Config.integer("SHUTDOWN_TIMEOUT_MS").pipe(Config.withDefault(15_000))

/** Idempotency-Key records are kept this long (Stripe: 24 h): the api's claims and the expiry job. */
export const IdempotencyTtlMs = Config.integer("IDEMPOTENCY_TTL_MS").pipe(Config.withDefault(24 * 3600_000))

/** Bearer token of the admin API. The default is for local development only (see checkAdminToken). */
export const AdminToken = Config.redacted("ADMIN_TOKEN").pipe(Config.withDefault(Redacted.make(DEV_ADMIN_TOKEN)))

/** `Debug`, `Info`, `Warning`, `Error`, `None` (or Effect's labels: `WARN`, …); parsed by observability/Logging.ts. */
export const LogLevelName = Config.string("LOG_LEVEL").pipe(Config.withDefault("Info"))

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
  const token = Redacted.value(yield* AdminToken)
  if (token.trim() !== "" && token !== DEV_ADMIN_TOKEN) return
  if (production) {
    const reason = token.trim() === "" ? "ADMIN_TOKEN is empty" : "ADMIN_TOKEN is not set (or is the development default)"
    yield* Effect.logError(`refusing to start the api role: ${reason}; set ADMIN_TOKEN to a secret of your own`).pipe(
      Effect.annotateLogs({ type: "STARTUP_REFUSED", role: "api", reason })
    )
    return yield* Effect.fail(new StartupRefused(`${reason} (NODE_ENV=production): set ADMIN_TOKEN to a secret of your own`))
  }
  yield* Effect.logWarning("the admin API uses the development token; set ADMIN_TOKEN outside development").pipe(
    Effect.annotateLogs({ type: "STARTUP_WARNING", role: "api" })
  )
})
