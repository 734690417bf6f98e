/**
 * Every role in one test process, on a fresh database and the suite's own topics and consumer group:
 * API (port 0), relay, payment worker + sweeper, and the payment provider simulator (port 0), with armable
 * crash points and worker settings small enough for tests (the `overrides` change them per suite).
 */
import { Effect, Layer } from "effect"
import { ConfigProvider } from "effect"
import { Domain, HttpLive, PgStores } from "../../src/App.js"
import { CrashPoints } from "../../src/CrashPoints.js"
import { DeadLetters } from "../../src/deadletter/DeadLetters.js"
import { Relay, RelayLive } from "../../src/outbox/Relay.js"
import { StatsProjection, StatsProjectorLive } from "../../src/projection/StatsProjection.js"
import { httpPaymentGateway, PaymentGateway } from "../../src/payment/PaymentGateway.js"
import { PaymentSimulator, PaymentSimulatorLive } from "../../src/payment/PaymentSimulator.js"
import { PaymentProcessor } from "../../src/payment/PaymentProcess.js"
import { PaymentSchedulerLive } from "../../src/payment/PaymentScheduler.js"
import { PaymentWorkerLive } from "../../src/payment/PaymentWorker.js"
import { Readiness } from "../../src/Readiness.js"
import { testSettings } from "./TestApp.js"
import { onTestDatabase } from "./TestDatabase.js"
import { suiteId, TestKafka } from "./TestKafka.js"

export interface SystemOptions {
  readonly env?: Record<string, string>
  readonly latencyMs?: number
  /** Another Kafka cluster than the one globalSetup started. */
  readonly brokers?: string
  readonly partitions?: number
}

export const TestSystem = (suite: string, options: SystemOptions = {}) => {
  const id = suiteId(suite)
  const group = `worker-${id}`
  const env = new Map(Object.entries({
    PAYMENT_WORKER_GROUP: group,
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
    ...options.env
  }))
  const Gateway = Layer.effect(PaymentGateway, Effect.map(PaymentSimulator, (s) => httpPaymentGateway(s.url, 2000)))
  const Simulator = PaymentSimulatorLive({
    port: 0,
    host: "127.0.0.1",
    latencyMs: options.latencyMs ?? 0,
    declineRate: 0,
    transientErrorRate: 0,
    outage: false
  })
  const Roles = Layer.mergeAll(
    HttpLive(testSettings(group)),
    RelayLive,
    PaymentWorkerLive,
    PaymentSchedulerLive,
    StatsProjectorLive.pipe(Layer.provide(StatsProjection.Default))
  ).pipe(
    Layer.provideMerge(PaymentProcessor.Default),
    Layer.provideMerge(Relay.Default),
    Layer.provideMerge(DeadLetters.Default),
    Layer.provideMerge(Gateway),
    Layer.provideMerge(Simulator),
    Layer.provideMerge(Domain),
    Layer.provideMerge(Layer.mergeAll(PgStores, CrashPoints.armable, Readiness.Default, TestKafka(id, options.partitions ?? 3, options.brokers))),
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(env)))
  )
  return onTestDatabase(suite, Roles)
}

