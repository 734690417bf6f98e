/**
 * The roles of src/Roles.ts in one test process — api (port 0), relay, worker, projector — on a fresh
 * database and the suite's own topics and consumer group. Only the infrastructure is the tests' own: the
 * payment provider simulator (port 0) behind the gateway, armable crash points, and a ConfigProvider with
 * worker settings small enough for tests (`env` changes them per suite).
 */
import { ConfigProvider, Effect, Layer } from "effect"
import { CrashPoints } from "../../src/CrashPoints.js"
import { httpPaymentGateway, PaymentGateway, PaymentGatewayConfig } from "../../src/payment/PaymentGateway.js"
import { processLayer, type RoleName } from "../../src/Roles.js"
import { PaymentSimulator, PaymentSimulatorLive } from "../../src/simulator/PaymentSimulator.js"
import { onTestDatabase } from "./TestDatabase.js"
import { suiteId, TestKafka } from "./TestKafka.js"

export const adminToken = "test-admin-token"

/** The worker charges the simulator, which listens on a free port (PROVIDER_PORT=0). */
const SimulatorGateway = Layer.effect(
  PaymentGateway,
  Effect.map(
    Effect.all([PaymentSimulator, Effect.orDie(PaymentGatewayConfig)]),
    ([simulator, config]) => httpPaymentGateway(simulator.url, config.timeoutMs, config.maxConnections)
  )
).pipe(Layer.provideMerge(PaymentSimulatorLive))

/** The suite's topics (on the broker globalSetup started, or `brokers`), the simulator, armable crash points. */
export const testInfrastructure = (id: string, partitions = 3, brokers?: string) => ({
  kafka: TestKafka(id, partitions, brokers),
  paymentGateway: SimulatorGateway,
  crashPoints: CrashPoints.armable
})

/** Settings for tests, then the suite's `env`; nothing is read from the environment of the test process. */
export const withTestConfig = (id: string, env: Record<string, string> = {}) =>
  Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
    new Map(Object.entries({
      PORT: "0",
      OPS_PORT: "0",
      HOST: "127.0.0.1",
      ADMIN_TOKEN: adminToken,
      PROVIDER_PORT: "0",
      PROVIDER_LATENCY_MS: "0",
      PAYMENT_TIMEOUT_MS: "2000",
      PAYMENT_WORKER_GROUP: `worker-${id}`,
      // the notifier's group is named after the topic prefix, which tests do not set: a group per suite, or two
      // suites running at once share one across their different topics (found: both starved, rebalancing)
      NOTIFIER_GROUP: `notifier-${id}`,
      PAYMENT_QUICK_ATTEMPTS: "2",
      PAYMENT_MAX_ATTEMPTS: "10",
      PAYMENT_RETRY_BASE_MS: "20",
      PAYMENT_RETRY_DELAY_MS: "100",
      PAYMENT_RETRY_MAX_DELAY_MS: "500",
      RETRY_POLL_MS: "100",
      CONSUMER_COMMIT_INTERVAL_MS: "100",
      BREAKER_THRESHOLD: "3",
      BREAKER_COOLDOWN_MS: "300",
      SWEEP_AFTER_MS: "600000",
      RELAY_POLL_MS: "200",
      STATS_POLL_MS: "100",
      ...env
    }))
  )))

export interface SystemOptions {
  /** Variables of docs/OPERATIONS.md "Configuration" for this suite (e.g. PROVIDER_LATENCY_MS, BREAKER_THRESHOLD). */
  readonly env?: Record<string, string>
  /** Another Kafka cluster than the one globalSetup started. */
  readonly brokers?: string
  readonly partitions?: number
  /** The roles of the process (default api, relay, worker, projector). */
  readonly roles?: ReadonlyArray<RoleName>
}

export const TestSystem = (suite: string, options: SystemOptions = {}) => {
  const id = suiteId(suite)
  return onTestDatabase(
    suite,
    processLayer(options.roles ?? ["api", "relay", "worker", "projector"], testInfrastructure(id, options.partitions ?? 3, options.brokers)).pipe(
      withTestConfig(id, options.env)
    )
  )
}
