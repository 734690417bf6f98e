/**
 * Kafka for a test suite: the broker test/globalSetup.ts started (or KAFKA_BROKERS), with topic names and
 * consumer groups of the suite's own, so suites run side by side and re-run without cleanup.
 */
import { Layer } from "effect"
import { randomBytes } from "node:crypto"
import { inject } from "vitest"
import { Kafka, makeKafka } from "../../src/kafka/Kafka.js"
import { shutdownBudget } from "../../src/Shutdown.js"

export const kafkaBrokers = () => inject("kafkaBrokers")

export const suiteId = (suite: string) => `${suite}_${randomBytes(3).toString("hex")}`

export const TestKafka = (id: string, partitions = 3, brokers = kafkaBrokers()) =>
  Layer.scoped(
    Kafka,
    makeKafka({ brokers, clientId: `test-${id}`, topicPrefix: `test.${id}.`, partitions, disconnectMs: shutdownBudget(15_000).disconnectMs, fetchMaxWaitMs: 100 })
  ).pipe(Layer.orDie)
