/**
 * The broker paused (SIGSTOP) under load, then killed -9 while paused, and back ~20 s later — the fault the
 * chaos suite's seed 1008 met. kafkajs takes back the sequence numbers of a produce request that failed, even one
 * the broker wrote; reused, they made the broker answer OUT_OF_ORDER_SEQUENCE_NUMBER to every later send (the
 * relay published nothing more), and can make it acknowledge other messages as duplicates without writing them.
 * Through src/kafka/Kafka.ts a failed send retires its producer (kafka_producers_renewed_total): sends go
 * through again once the broker is back, and every message whose send succeeded is on the topic.
 * Uses a broker of its own (KAFKA_PORT 19292) so other suites keep theirs.
 */
import { assert, describe, it } from "@effect/vitest"
import { afterAll } from "vitest"
import { Duration, Effect, Fiber, Metric } from "effect"
import { makeKafka, producersRenewed } from "../src/kafka/Kafka.js"
import { shutdownBudget } from "../src/Shutdown.js"
import { kafkaClient, readTopics } from "./chaos/kafkaio.js"
import { ownBroker } from "./support/OwnBroker.js"

const broker = ownBroker("19292")
const brokers = broker.start()
afterAll(broker.stop)

describe("broker paused, then killed while paused, under load", () => {
  it.live("sends go through again once it is back, and every acknowledged message is on the topic", () =>
    Effect.gen(function*() {
      const kafka = yield* makeKafka({ brokers, clientId: "pause-kill-test", topicPrefix: `pause-kill-${Date.now()}.`, partitions: 6, disconnectMs: shutdownBudget(15_000).disconnectMs, fetchMaxWaitMs: 100 })
      let n = 0
      const acked = new Set<string>()
      // 20 messages over 6 partitions, each value unique; remembered once the broker acknowledged them
      const send = Effect.suspend(() => {
        const messages = Array.from({ length: 20 }, () => ({ key: String(n % 50), value: String(n++), headers: {} }))
        return Effect.tap(kafka.send(kafka.topics.orderEvents, messages), () => Effect.sync(() => messages.forEach((m) => acked.add(m.value))))
      })
      yield* Effect.repeatN(send, 19)
      const renewedBefore = (yield* Metric.value(producersRenewed)).count
      // one send at a time, as the relay does; a failed one is retried after 250 ms
      const loop = yield* Effect.forkScoped(Effect.forever(Effect.catchAll(send, () => Effect.sleep("250 millis"))))
      yield* Effect.sleep("500 millis")
      const pid = broker.pid()
      process.kill(pid, "SIGSTOP")
      yield* Effect.sleep("7 seconds")
      process.kill(pid, "SIGKILL")
      // down for longer than the producer's retries (~16 s): the send in progress fails for good
      yield* Effect.sleep("20 seconds")
      broker.start()
      // back: within a minute, sends succeed again (they kept failing with OUT_OF_ORDER_SEQUENCE_NUMBER before)
      const deadline = Date.now() + 60_000
      let ok = false
      while (!ok && Date.now() < deadline) {
        ok = (yield* Effect.either(send.pipe(Effect.timeout(Duration.seconds(10)))))._tag === "Right"
        if (!ok) yield* Effect.sleep("500 millis")
      }
      yield* Fiber.interrupt(loop)
      assert.isTrue(ok, "no send went through within 60 s of the broker's return")
      assert.isAbove((yield* Metric.value(producersRenewed)).count, renewedBefore, "the failed producer was replaced")
      // nothing acknowledged is missing from the topic (duplicates of unacknowledged batches may be there)
      const read = yield* Effect.promise(() =>
        readTopics(kafkaClient(brokers, "pause-kill-reader"), [kafka.topics.orderEvents], `pause-kill-reader-${Date.now()}`, 60_000))
      assert.isTrue(read.complete, "the topic could not be read to its end")
      const onTopic = new Set(read.messages.get(kafka.topics.orderEvents)!.map((m) => m.value?.toString() ?? ""))
      const missing = [...acked].filter((v) => !onTopic.has(v))
      assert.deepStrictEqual(missing.slice(0, 20), [], `${missing.length} of ${acked.size} acknowledged messages not on the topic`)
    }).pipe(Effect.scoped), { timeout: 150_000 })
})
