/**
 * The program. One binary, several roles (DESIGN §11):
 *   all (default)      every role below in one process, for development
 *   api                the HTTP API (orders, health, metrics, admin)
 *   relay              the outbox relay to Kafka
 *   worker             the payment worker (keyed consumer), the payment scheduler (due retries, stuck orders)
 *                      and the retention job
 *   projector          the async stats projection (revenue per day, orders per state)
 *   payment-provider   the payment provider simulator
 *   migrate            apply pending migrations and exit
 * Roles combine with commas: `api,relay,worker,projector` is the whole system without the provider simulator.
 * The database is created when missing and migrations are applied at startup of every role.
 * SIGTERM/SIGINT: every role stops taking work, finishes what is in flight (the worker commits its offsets,
 * the server drains requests) and exits.
 */
import { HttpServer } from "@effect/platform"
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { Domain, HttpLive, PgStores } from "./App.js"
import { AppConfig, checkAdminToken } from "./Config.js"
import { CrashPoints } from "./CrashPoints.js"
import { DeadLetters } from "./deadletter/DeadLetters.js"
import { IdempotencyExpiryLive } from "./idempotency/IdempotencyExpiry.js"
import { KafkaLive } from "./kafka/Kafka.js"
import { Lifecycle, logExit, loggingFor } from "./observability/Logging.js"
import { tracingLayer } from "./observability/Tracing.js"
import { Relay, RelayLive } from "./outbox/Relay.js"
import { StatsProjection, StatsProjectorLive } from "./projection/StatsProjection.js"
import { HttpPaymentGateway } from "./payment/PaymentGateway.js"
import { PaymentSimulatorLive, SimulatorConfig } from "./payment/PaymentSimulator.js"
import { PaymentProcessor } from "./payment/PaymentProcess.js"
import { PaymentSchedulerLive } from "./payment/PaymentScheduler.js"
import { PaymentWorkerLive } from "./payment/PaymentWorker.js"
import { Readiness } from "./Readiness.js"
import { RetentionLive } from "./retention/Retention.js"
import { DatabaseLive } from "./Sql.js"

const roles = ["all", "api", "relay", "worker", "projector", "payment-provider", "migrate"] as const
type Role = (typeof roles)[number]

const requested = (process.argv[2] ?? "all").split(",") as Array<Role>
if (requested.some((r) => !roles.includes(r)) || (requested.includes("migrate") && requested.length > 1)) {
  process.stderr.write(`unknown role ${JSON.stringify(process.argv[2])}; one or more of: ${roles.join(", ")}\n`)
  process.exit(2)
}

const Database = DatabaseLive()

const Api = Layer.unwrapEffect(
  Effect.map(AppConfig, (config) =>
    Layer.effectDiscard(
      Effect.flatMap(HttpServer.HttpServer, (server) =>
        Effect.logInfo("listening").pipe(
          Effect.annotateLogs({ type: "STARTUP", role: "api", address: HttpServer.formatAddress(server.address) })
        ))
    ).pipe(
      Layer.provide(HttpLive({
        ...config,
        watch: { maxConnections: config.watchMaxConnections, heartbeatMs: config.watchHeartbeatMs, pollMs: config.watchPollMs }
      })),
      Layer.provide(DeadLetters.Default),
      Layer.provide(KafkaLive),
      Layer.merge(IdempotencyExpiryLive({ ttlMs: config.idempotencyTtlMs, intervalMs: config.idempotencyExpiryIntervalMs }))
    ))
)

const RelayRole = RelayLive.pipe(Layer.provide(Relay.Default), Layer.provide(KafkaLive))

const WorkerRole = Layer.mergeAll(PaymentWorkerLive, PaymentSchedulerLive, RetentionLive).pipe(
  Layer.provide(PaymentProcessor.Default),
  Layer.provide(DeadLetters.Default),
  Layer.provide(HttpPaymentGateway),
  Layer.provide(KafkaLive)
)

const ProjectorRole = StatsProjectorLive.pipe(Layer.provide(StatsProjection.Default))

const ProviderRole = Layer.unwrapEffect(Effect.map(SimulatorConfig, (config) => Layer.discard(PaymentSimulatorLive(config))))

/** What every role may use: the database, the stores, the order actors. (Kafka: only the roles that need it.) */
const Shared = Domain.pipe(
  Layer.provideMerge(Layer.mergeAll(PgStores, CrashPoints.none, Readiness.Default)),
  Layer.provideMerge(Database)
)

const layers: Record<Exclude<Role, "migrate">, Layer.Layer<never, unknown, Layer.Layer.Success<typeof Shared>>> = {
  api: Api,
  relay: RelayRole,
  worker: WorkerRole,
  projector: ProjectorRole,
  "payment-provider": ProviderRole,
  all: Layer.mergeAll(ProviderRole, Api, RelayRole, WorkerRole, ProjectorRole)
}

/** Checks made before anything is built (no database touched when the api role may not start). */
const preflight = requested.includes("api") || requested.includes("all") ? checkAdminToken : Effect.void

const program = requested[0] === "migrate"
  ? Effect.scoped(Layer.build(Database)).pipe(
    Effect.zipRight(Effect.logInfo("migrations applied").pipe(Effect.annotateLogs({ type: "STARTUP" })))
  )
  : Effect.zipRight(preflight, Layer.launch(
    Lifecycle.pipe(
      Layer.provide(requested.map((r) => layers[r as Exclude<Role, "migrate">]).reduce((all, layer) => Layer.merge(all, layer))),
      Layer.provide(Shared)
    )
  ))

// The shutdown deadline (SHUTDOWN_TIMEOUT_MS): each role stops within it (the worker interrupts in-flight work
// at the deadline less min(5 s, a third), to commit and leave in time); should anything still hang at the
// deadline, the process exits anyway (code 1), after saying so.
const deadline = Number(process.env.SHUTDOWN_TIMEOUT_MS ?? 15_000)
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    setTimeout(() => {
      process.stdout.write(JSON.stringify({
        ts: new Date().toISOString(),
        level: "ERROR",
        type: "SHUTDOWN_TIMEOUT",
        msg: `shutdown did not finish within ${deadline} ms: exiting`
      }) + "\n")
      process.exit(1)
    }, deadline).unref()
  })
}

program.pipe(
  logExit,
  Effect.provide(tracingLayer(requested.join(","))),
  Effect.provide(loggingFor(requested.join(","))),
  NodeRuntime.runMain({ disablePrettyLogger: true })
)
