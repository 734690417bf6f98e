/**
 * The keyed consumer's supervisor (src/kafka/KeyedConsumer.ts) on the TestClock, without a broker: a consumer
 * that cannot even be created is a crash, and the supervisor rebuilds it with exponential backoff from 500 ms,
 * capped at 30 s, jittered ±20 % — for ever, logging and counting each restart.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Random, TestClock } from "effect"
import { KafkaError } from "../../src/kafka/Kafka.js"
import { runKeyedConsumer } from "../../src/kafka/KeyedConsumer.js"
import { shutdownBudget } from "../../src/Shutdown.js"
import { kafkaStub } from "../support/KafkaStub.js"

/** A Kafka whose every consumer fails to connect; the clock time of each attempt is noted. */
const unreachable = () => {
  const attempts: Array<number> = []
  const layer = kafkaStub("unit.", {
    consumer: () =>
      Clock.currentTimeMillis.pipe(
        Effect.flatMap((now) => (attempts.push(now), Effect.fail(new KafkaError("connect: broker unreachable"))))
      )
  })
  return { layer, attempts }
}

describe("KeyedConsumer restart backoff", () => {
  it.scoped("a consumer that cannot connect is rebuilt after 0.5, 1, 2, 4 … s (±20 %), capped at 30 s", () =>
    Effect.gen(function*() {
      const kafka = unreachable()
      const status = yield* runKeyedConsumer({
        groupId: "unit-restarts",
        topics: ["unit.orders.events"],
        handle: () => Effect.void,
        maxInFlightPerPartition: 10,
        commitIntervalMs: 1000,
        shutdown: shutdownBudget(0)
      }).pipe(Effect.provide(kafka.layer))
      // TestClock.adjust wakes each sleep at its own time, in order, including those scheduled meanwhile
      yield* TestClock.adjust(Duration.minutes(4))
      const { attempts } = kafka
      assert.strictEqual(attempts[0], 0)
      const gaps = attempts.slice(1).map((t, i) => t - attempts[i]!)
      const nominal = gaps.map((_, i) => Math.min(500 * 2 ** i, 30_000))
      gaps.forEach((gap, i) => {
        assert.isTrue(gap >= nominal[i]! * 0.8 && gap <= nominal[i]! * 1.2, `restart ${i + 1} after ${gap} ms, nominal ${nominal[i]}`)
      })
      assert.isAtLeast(gaps.filter((_, i) => nominal[i] === 30_000).length, 3, "the cap is reached and kept")
      assert.isTrue(gaps.some((gap, i) => gap !== nominal[i]), "jittered, not the nominal delays")
      const s = yield* status
      assert.strictEqual(s.state, "restarting")
      assert.strictEqual(s.restarts, attempts.length)
      assert.include(s.lastError ?? "", "broker unreachable")
    }).pipe(Effect.withRandom(Random.make("consumer-restarts"))))
})
