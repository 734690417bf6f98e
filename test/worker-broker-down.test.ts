/**
 * SIGTERM to a worker process while its broker is down (the chaos suite's seed 1166), here paused so that it answers
 * nothing: the final commit, the group leave and the disconnects wait, and each may only take its share of SHUTDOWN_TIMEOUT_MS
 * (src/Shutdown.ts): the worker exits 0 within the deadline, having logged SHUTDOWN, instead of hanging into the
 * process's backstop (exit 1, SHUTDOWN_TIMEOUT). Once the broker is back a new worker settles every order, each
 * charged exactly once. Uses a broker of its own (KAFKA_PORT 19392) so other suites keep theirs.
 */
import { Duration, Effect, Fiber, Option } from "effect"
import { afterAll, afterEach, assert, describe, it } from "vitest"
import { makeKafka } from "../src/kafka/Kafka.js"
import { shutdownBudget } from "../src/Shutdown.js"
import { ownBroker } from "./support/OwnBroker.js"
import { pollUntil, sleep } from "./support/Processes.js"
import {
  assertPaidOnceEach,
  placeOrders,
  startSystem,
  STARTUP_MS,
  stopAll,
  stopProcesses,
  terminatesInTime,
  TEST_MS,
  timeline,
  withTails
} from "./support/WorkerSystem.js"

const broker = ownBroker("19392")
const brokers = broker.start()
afterEach(stopProcesses)
afterAll(async () => {
  await stopAll()
  broker.stop()
})
// a failed assertion must not leave the broker paused for the stop above
afterEach(broker.resume)

describe("processes and a broker that is down", () => {
  it("SIGTERM exits 0 within the deadline; once the broker is back every order settles", () =>
    withTails(async () => {
      const t = timeline("broker-down")
      const system = await startSystem("proc_broker_down", ["worker-1"], {}, brokers)
      const first = system.workers[0]!
      await first.waitForLine("REBALANCE joined", (l) => l.type === "REBALANCE" && l.phase === "joined", STARTUP_MS)
      t.mark("worker joined")
      const paid = await placeOrders(system, 10)
      await pollUntil("the first orders PAID", () => system.states(paid), (s) => s.PAID === paid.length, 90_000, 500)
      t.mark("first paid")

      // a broker that answers nothing (a killed one refuses connections, and kafkajs's calls fail fast: a
      // paused one leaves every request waiting for kafkajs's own 30 s request timeout)
      const pid = broker.pid()
      process.kill(pid, "SIGSTOP")
      await sleep(1_000)
      // accepted while the broker is down: their events wait in the outbox
      const waiting = await placeOrders(system, 10)
      await terminatesInTime(first)
      t.mark("exited")

      process.kill(pid, "SIGCONT")
      t.mark("broker back")
      const second = system.worker("worker-2")
      const ids = [...paid, ...waiting]
      await pollUntil("every order PAID", () => system.states(ids), (s) => s.PAID === ids.length, 120_000, 500)
      t.mark("all paid")
      await assertPaidOnceEach(system, ids)
      assert.isAbove(second.ofType("PAYMENT_RESULT").length, 0, "the new worker settled the waiting orders")
      t.print()
    }), TEST_MS)

  it("SIGTERM to the api+relay process, its sends waiting on the broker, exits 0 within the deadline", () =>
    withTails(async () => {
      const system = await startSystem("proc_broker_down_relay", [], {}, brokers)
      await placeOrders(system, 5)
      const pid = broker.pid()
      process.kill(pid, "SIGSTOP")
      await sleep(1_000)
      // the relay is sending these (or waiting to): its requests cannot be answered
      await placeOrders(system, 10)
      await sleep(500)
      await terminatesInTime(system.api)
      process.kill(pid, "SIGCONT")
    }), TEST_MS)

  it("a consumer being built while the broker answers nothing is given up at once when interrupted", async () => {
    const pid = broker.pid()
    const outcome = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const kafka = yield* makeKafka({
        brokers,
        clientId: "broker-down-consumer",
        topicPrefix: `broker-down-${Date.now()}.`,
        partitions: 1,
        disconnectMs: shutdownBudget(15_000).disconnectMs,
        fetchMaxWaitMs: 100
      })
      process.kill(pid, "SIGSTOP")
      // kafkajs would wait 30 s for the broker's first answer, then retry: the supervisor's rebuild during an
      // outage, which a SIGTERM interrupts
      const building = yield* Effect.fork(Effect.scoped(kafka.consumer(`broker-down-${Date.now()}`, [kafka.topics.orderEvents])))
      yield* Effect.sleep(Duration.seconds(1))
      // a hang detector, not a speed bound
      return yield* Fiber.interrupt(building).pipe(Effect.timeout(Duration.seconds(10)), Effect.option)
    })).pipe(Effect.ensuring(Effect.sync(() => process.kill(pid, "SIGCONT")))))
    assert.isTrue(Option.isSome(outcome), "the consumer's connect was still holding the interrupt 10 s later")
  }, TEST_MS)
})
