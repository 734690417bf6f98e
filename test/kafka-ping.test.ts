/**
 * The broker probe behind readiness (`Kafka.ping`, src/ops/Probes.ts) asks the cluster for the orders topic
 * only. It asked for the cluster's description, which had the broker list every topic it holds — twice a
 * probe, each second in every process (~300 topics on a broker shared by test and bench runs: a quarter of an
 * idle api's CPU). So it answers for our topic: a broker that has lost it fails the probe.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { Kafka as KafkaJs } from "kafkajs"
import { Kafka } from "../src/kafka/Kafka.js"
import { kafkaBrokers, suiteId, TestKafka } from "./support/TestKafka.js"

const id = suiteId("ping")

describe("Kafka.ping", () => {
  layer(TestKafka(id), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("answers for the orders topic: once it is deleted, the probe fails", () =>
      Effect.gen(function*() {
        const kafka = yield* Kafka
        assert.isTrue(Exit.isSuccess(yield* Effect.exit(kafka.ping)))
        const admin = new KafkaJs({ clientId: `${id}-admin`, brokers: kafkaBrokers().split(","), logLevel: 0 }).admin()
        yield* Effect.promise(async () => {
          await admin.connect()
          await admin.deleteTopics({ topics: [kafka.topics.orderEvents], timeout: 10_000 })
          await admin.disconnect()
        })
        // the topic's deletion reaches the broker's metadata a moment later
        let failed = false
        for (let i = 0; i < 50 && !failed; i++) {
          failed = Exit.isFailure(yield* Effect.exit(kafka.ping))
          if (!failed) yield* Effect.sleep("200 millis")
        }
        assert.isTrue(failed, "the probe still passed with the orders topic gone")
      }))
  })
})
