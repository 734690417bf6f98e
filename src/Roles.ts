/**
 * Each role's layer, defined once (docs/OPERATIONS.md "Commands", docs/LAYOUT.md; docs/ARCHITECTURE.md "Processes"). `main`
 * runs any set of them in one process (the benchmark and the chaos runner start it); the test systems
 * (test/support/TestApp.ts, TestSystem.ts) build the same layers over infrastructure of their own: a test
 * database, the suite's Kafka topics, the simulator behind the gateway, armable crash points, a
 * ConfigProvider. (The property harness drives the services under these loops itself, over the stores
 * defined here.) Every role reads its settings through `Config` when it is built.
 *
 *   api                the HTTP API (orders, health, metrics, admin)
 *   relay              the outbox relay to Kafka
 *   worker             the payment worker (keyed consumer), the payment scheduler (due retries, stuck
 *                      orders) and the retention job (with the expiry of Idempotency-Keys)
 *   projector          the async stats projection
 *   notifier           the webhook notifier (src/webhooks): its own consumer of order events writing signed
 *                      deliveries, and the dispatcher making them with durable retries
 *   payment-provider   the payment provider simulator (src/simulator), a stand-in for an external system
 *   webhook-receiver   the webhook receiver simulator (src/simulator): merchants' endpoints, a stand-in too
 *
 * The roles of one process share its stores, its order actors (one mailbox per order in the process) and
 * its readiness checks; Kafka is connected only when a role of the process uses it. A process without the api
 * role serves the api's health and metrics endpoints alone on OPS_PORT, so every process can be probed and
 * scraped.
 */
import * as HttpServer from "@effect/platform/HttpServer"
import { Config, Effect, Layer, Option } from "effect"
import { OrderActors } from "./actor/OrderActors.js"
import { HttpLive, OpsHttpLive } from "./http/Server.js"
import { BodyTimeoutMs, checkAdminToken, HeadersTimeoutMs, Host, listenPort, WorkerGroup } from "./Config.js"
import { CrashPoints } from "./CrashPoints.js"
import { DeadLetters } from "./deadletter/DeadLetters.js"
import { type Kafka, KafkaLive } from "./kafka/Kafka.js"
import { Relay, RelayLive } from "./outbox/Relay.js"
import { HttpPaymentGateway, type PaymentGateway } from "./payment/PaymentGateway.js"
import { PaymentProcessor } from "./payment/PaymentProcess.js"
import { PaymentSchedulerLive } from "./payment/PaymentScheduler.js"
import { ReconciliationLive } from "./payment/Reconciliation.js"
import { PaymentWorkerLive } from "./payment/PaymentWorker.js"
import { StatsProjection, StatsProjectorLive } from "./projection/StatsProjection.js"
import { BrokerProbeLive, DatabaseProbeLive } from "./ops/Probes.js"
import { Readiness } from "./Readiness.js"
import { boundedRelease, ShutdownBudgetConfig } from "./Shutdown.js"
import { RetentionLive } from "./retention/Retention.js"
import { PaymentSimulatorLive } from "./simulator/PaymentSimulator.js"
import { WebhookReceiverLive } from "./simulator/WebhookReceiver.js"
import { PgStores } from "./Stores.js"
import { NotifierLive } from "./webhooks/Notifier.js"
import { checkWebhookUrlPolicy } from "./webhooks/UrlSafety.js"

/** What the roles of one process share: the order actors over the PostgreSQL stores, and readiness (with the
 * database's probe: every process needs its database). */
export const ProcessCore = Layer.mergeAll(OrderActors.Default, DatabaseProbeLive).pipe(
  Layer.provideMerge(Readiness.Default),
  Layer.provideMerge(PgStores)
)

/** The broker's probe: required by the relay and the worker (they cannot work without it); the api reports it
 * only (it accepts orders into the outbox while the broker is down; it needs the broker for /metrics' lag). */
const BrokerRequired = BrokerProbeLive(true)
const BrokerReported = BrokerProbeLive(false)

/**
 * What a process's roles run on besides its database: the part a test swaps. A test's layers may expose more
 * than the service (the simulator behind a test gateway): the process exposes it too.
 */
export interface Infrastructure<K = Kafka, G = PaymentGateway, C = CrashPoints, E = never, R = never> {
  /** the broker; built only in a process one of whose roles uses it (api, relay, worker) */
  readonly kafka: Layer.Layer<K, E, R>
  /** the payment provider the worker charges */
  readonly paymentGateway: Layer.Layer<G, E, R>
  readonly crashPoints: Layer.Layer<C, E, R>
}

/** The provider at PAYMENT_PROVIDER_URL, the broker at KAFKA_BROKERS, no crash points. */
export const Production: Infrastructure = {
  kafka: KafkaLive,
  paymentGateway: HttpPaymentGateway,
  crashPoints: CrashPoints.none
}

/** Where the api role's server listens (docs/OPERATIONS.md "Configuration": PORT, HOST, the timeouts); each
 * handler reads its own settings (BODY_LIMIT, IDEMPOTENCY_*, WATCH_*, ADMIN_TOKEN) when its layer is built. */
export const HttpConfig = Config.all({
  port: listenPort("PORT", 3000),
  host: Host,
  /** A body not fully received after this long → 408, connection closed. */
  bodyTimeoutMs: BodyTimeoutMs,
  /** Request headers not complete after this long → 408, connection closed. */
  headersTimeoutMs: HeadersTimeoutMs
})

/** The settings of the health and metrics endpoints of a process without the api role (docs/OPERATIONS.md
 * "Configuration"); its server's timeouts are the api's. */
export const OpsConfig = Config.all({
  /** 0: any free port (the address is logged) */
  port: listenPort("OPS_PORT", 9464),
  host: Host,
  headersTimeoutMs: HeadersTimeoutMs,
  bodyTimeoutMs: BodyTimeoutMs,
  workerGroup: WorkerGroup
})

/** The STARTUP line saying where a server of the process listens (with port 0, the only way to know). */
const listening = (role: "api" | "ops") =>
  Layer.effectDiscard(
    Effect.flatMap(HttpServer.HttpServer, (server) =>
      Effect.logInfo("listening").pipe(
        Effect.annotateLogs({ type: "STARTUP", role, address: HttpServer.formatAddress(server.address) })
      ))
  )

/** The server's close waits for open requests: bounded by the in-flight share (src/Shutdown.ts). */
const ApiServer = Layer.unwrapEffect(Effect.map(
  Effect.orDie(Config.all([HttpConfig, ShutdownBudgetConfig])),
  ([config, budget]) => boundedRelease("http server close", budget.graceMs, HttpLive(config))
))

const ApiRole = listening("api").pipe(
  Layer.provideMerge(ApiServer),
  Layer.provideMerge(DeadLetters.Default)
)

const RelayRole = RelayLive.pipe(Layer.provideMerge(Relay.Default))

const WorkerRole = Layer.mergeAll(PaymentWorkerLive, PaymentSchedulerLive, RetentionLive, ReconciliationLive).pipe(
  Layer.provideMerge(PaymentProcessor.Default),
  Layer.provideMerge(DeadLetters.Default)
)

const ProjectorRole = StatsProjectorLive.pipe(Layer.provideMerge(StatsProjection.Default))

const NotifierRole = NotifierLive.pipe(Layer.provideMerge(DeadLetters.Default))

/** Each role over the given infrastructure (a layer given twice is built once per process: layers are memoized). */
export const roles = <K, G, C, E, R>(infrastructure: Infrastructure<K, G, C, E, R>) => ({
  // the api asks the provider for the admin reconciliation
  api: ApiRole.pipe(Layer.provideMerge(Layer.merge(infrastructure.kafka, infrastructure.paymentGateway))),
  relay: RelayRole.pipe(Layer.provideMerge(Layer.merge(infrastructure.kafka, infrastructure.crashPoints))),
  worker: WorkerRole.pipe(
    Layer.provideMerge(Layer.mergeAll(infrastructure.kafka, infrastructure.crashPoints, infrastructure.paymentGateway))
  ),
  projector: ProjectorRole,
  notifier: NotifierRole.pipe(Layer.provideMerge(infrastructure.kafka)),
  "payment-provider": PaymentSimulatorLive,
  "webhook-receiver": WebhookReceiverLive
})

export type RoleName = keyof ReturnType<typeof roles>
export const roleNames: ReadonlyArray<RoleName> = ["api", "relay", "worker", "projector", "notifier", "payment-provider", "webhook-receiver"]

/** A comma list of role names (`api,relay`), `all` standing for every role; None when a name is unknown. */
export const parseRoles = (argument: string): Option.Option<ReadonlyArray<RoleName>> => {
  const names = argument.split(",").flatMap((n): ReadonlyArray<string> => n.trim() === "all" ? roleNames : [n.trim()])
  return names.every((n): n is RoleName => (roleNames as ReadonlyArray<string>).includes(n))
    ? Option.some([...new Set(names)])
    : Option.none()
}

type Roles<K, G, C, E, R> = ReturnType<typeof roles<K, G, C, E, R>>
// distributive over a union of roles (Layer.Layer.Success is not)
type Out<L> = L extends Layer.Layer<infer A, infer _E, infer _R> ? A : never
type Err<L> = L extends Layer.Layer<infer _A, infer E, infer _R> ? E : never
type In<L> = L extends Layer.Layer<infer _A, infer _E, infer R> ? R : never

/** Health and metrics of a process without the api role, over what its roles built (Kafka where one uses it). */
const OpsEndpoints = listening("ops").pipe(Layer.provide(Layer.unwrapEffect(Effect.map(
  Effect.orDie(Config.all([OpsConfig, ShutdownBudgetConfig])),
  // a scrape in flight (broker lag from a broker that is down) would hold the close
  ([config, budget]) => boundedRelease("ops server close", budget.disconnectMs, OpsHttpLive(config))
))))

/**
 * The roles `names` of one process over `infrastructure`, with what they share, and the ops endpoints when
 * the api is not among them; needs the database (a PgClient: `DatabaseLive` in production, a test database in
 * tests). Exposes every service it builds.
 */
export const processLayer = <const N extends RoleName, K, G, C, E, R>(
  names: ReadonlyArray<N>,
  infrastructure: Infrastructure<K, G, C, E, R>
): Layer.Layer<
  Out<Roles<K, G, C, E, R>[N]> | Out<typeof ProcessCore>,
  Err<Roles<K, G, C, E, R>[N]> | Err<typeof ProcessCore>,
  Exclude<In<Roles<K, G, C, E, R>[N]>, Out<typeof ProcessCore>> | In<typeof ProcessCore>
> => {
  const all = roles(infrastructure)
  const selected = names.map((name) => all[name] as Layer.Layer<unknown, unknown, unknown>)
  const ofRoles = selected.reduce((merged, layer) => Layer.merge(merged, layer)).pipe(Layer.provideMerge(ProcessCore))
  // over what the roles built (Kafka among it)
  const broker = names.some((name) => name === "relay" || name === "worker" || name === "notifier")
    ? BrokerRequired
    : names.includes("api" as N)
    ? BrokerReported
    : Layer.empty
  const probed = Layer.provideMerge(broker as Layer.Layer<never, never, unknown>, ofRoles)
  return (names.includes("api" as N) ? probed : Layer.provideMerge(OpsEndpoints, probed)) as never
}

/** Checks made before anything is built: the api role refuses to start without usable admin credentials. */
export const preflight = (names: ReadonlyArray<RoleName>) =>
  Effect.zipRight(
    names.includes("api") ? checkAdminToken : Effect.void,
    names.includes("api") || names.includes("notifier") ? checkWebhookUrlPolicy(names.includes("api") ? "api" : "notifier") : Effect.void
  )
