/**
 * The keyed consumer's shutdown (src/kafka/KeyedConsumer.ts) against a broker that is down, on the TestClock: a
 * handler that never finishes, an offset commit and a group leave that never answer (kafkajs retries them for as
 * long as it is not stopped). The scope closes once the grace and the commit's and the leave's shares have passed,
 * never later: each step is abandoned at its share and says so (SHUTDOWN_STEP_TIMEOUT). The chaos suite's seed
 * 1166 met this as a worker SIGTERMed with the broker down that did not exit within SHUTDOWN_TIMEOUT_MS: the
 * steps' timeouts ran inside the (uninterruptible) finalizer, where a timeout waits for the step it timed out.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Logger, Option, Scope, TestClock } from "effect"
import type { Consumer } from "kafkajs"
import { runKeyedConsumer } from "../../src/kafka/KeyedConsumer.js"
import { kafkaStub } from "../support/KafkaStub.js"
import { collectLogTypes } from "../support/logTypes.js"

const topic = "unit.orders.events"

/** A kafkajs consumer whose broker is gone after one batch: commits and stop never settle. */
const unansweringConsumer = () => {
  const calls = { commits: 0, stops: 0 }
  const listeners = new Map<string, (event: { payload: unknown }) => void>()
  const message = (offset: string, key: string) => ({ offset, key: Buffer.from(key), value: Buffer.from("{}"), headers: {} })
  const consumer = {
    events: { CRASH: "crash", STOP: "stop", REBALANCING: "rebalancing", GROUP_JOIN: "group_join" },
    on: (event: string, listener: (event: { payload: unknown }) => void) => {
      listeners.set(event, listener)
      return () => listeners.delete(event)
    },
    run: async ({ eachBatch }: { eachBatch: (payload: unknown) => Promise<void> }) => {
      listeners.get("group_join")?.({ payload: { memberAssignment: { [topic]: [0] } } })
      await eachBatch({
        batch: { topic, partition: 0, messages: [message("0", "done"), message("1", "stuck")] },
        resolveOffset: () => {},
        pause: () => () => {}
      })
    },
    pause: () => {},
    resume: () => {},
    commitOffsets: () => (calls.commits++, new Promise<void>(() => {})),
    stop: () => (calls.stops++, new Promise<void>(() => {}))
  }
  return { consumer: consumer as unknown as Consumer, calls }
}

/** A few real turns of the event loop: kafkajs callbacks run as promises, outside the TestClock. */
const settle = Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 20))).pipe(Effect.repeatN(4))

describe("KeyedConsumer shutdown with the broker down", () => {
  it.effect("the scope closes after the grace plus the commit's and the leave's shares, abandoning each step", () =>
    Effect.gen(function*() {
      const { calls, consumer } = unansweringConsumer()
      const types: Array<string> = []
      const logger = collectLogTypes(types)
      const scope = yield* Scope.make()
      const status = yield* runKeyedConsumer({
        groupId: "unit-shutdown",
        topics: [topic],
        handle: (m) => Buffer.from(m.key!).toString() === "stuck" ? Effect.never : Effect.void,
        maxInFlightPerPartition: 10,
        commitIntervalMs: 60_000,
        shutdown: { graceMs: 1_000, commitMs: 200, leaveMs: 400 }
      }).pipe(
        Effect.provide(kafkaStub("unit.", { consumer: () => Effect.succeed(consumer) })),
        Scope.extend(scope),
        Effect.provide(Logger.replace(Logger.defaultLogger, logger))
      )
      yield* settle
      const before = yield* status
      assert.strictEqual(before.state, "consuming")
      assert.strictEqual(before.inFlight, 1, "the stuck message is in flight, the other finished")

      const closing = yield* Effect.fork(Scope.close(scope, Exit.void).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, logger))
      ))
      yield* settle
      yield* TestClock.adjust(Duration.millis(999))
      yield* settle
      assert.isTrue(Option.isNone(yield* Fiber.poll(closing)), "in-flight work has its grace")
      // the grace, then the commit's share, then the leave's: each is a separate wait on the clock
      for (const ms of [1, 200, 400]) {
        yield* TestClock.adjust(Duration.millis(ms))
        yield* settle
      }
      assert.isTrue(Option.isSome(yield* Fiber.poll(closing)), "the scope closed once every share had passed")
      assert.strictEqual(calls.commits, 1, "the finished message's offset was committed at shutdown")
      assert.strictEqual(calls.stops, 1, "the consumer was asked to leave the group")
      assert.strictEqual(types.filter((t) => t === "SHUTDOWN_STEP_TIMEOUT").length, 2, types.join(","))
      assert.include(types, "SHUTDOWN")
      assert.strictEqual((yield* status).state, "stopped")
    }))
})
