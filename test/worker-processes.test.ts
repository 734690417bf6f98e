/**
 * The worker role as a real, separate OS process (`node --import tsx src/main.ts worker`), as deployed, with
 * payment-provider and api+relay processes, on a fresh database and the suite's own topics and group
 * (docs/ARCHITECTURE.md "Payment worker", "Processes"; issue 10):
 * - SIGTERM to a worker during a provider outage: it exits 0 within SHUTDOWN_TIMEOUT_MS (plus slack), having
 *   logged SHUTDOWN; a new worker then settles every order, each charged exactly once.
 * (kill -9 of one of two workers mid-load: worker-processes-kill.test.ts.)
 */
import { afterAll, afterEach, assert, describe, it } from "vitest"
import { pollUntil } from "./support/Processes.js"
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

afterEach(stopProcesses)
afterAll(stopAll)

describe("worker roles as separate processes", () => {
  it("SIGTERM during a provider outage exits within the deadline; after restart every order settles", () =>
    withTails(async () => {
      const t = timeline("sigterm")
      const system = await startSystem("proc_sigterm", ["worker-1"], { SWEEP_AFTER_MS: "3000" })
      t.mark("system up")
      await system.setOutage(true)
      const first = system.workers[0]!
      await first.waitForLine("REBALANCE joined", (l) => l.type === "REBALANCE" && l.phase === "joined", STARTUP_MS)
      t.mark("worker joined")

      const ids = await placeOrders(system, 20)
      // the worker has taken them, and the provider refuses: payments under way that cannot finish
      await pollUntil("half the orders PAYMENT_PENDING", () => system.states(ids), (s) => (s.PAYMENT_PENDING ?? 0) >= 10, 60_000)
      t.mark("pending")
      assert.strictEqual(first.ofType("PAYMENT_RESULT").length, 0, "no payment can succeed during the outage")

      await terminatesInTime(first)
      t.mark("exited")
      await system.setOutage(false)
      const second = system.worker("worker-2")
      await pollUntil("every order PAID", () => system.states(ids), (s) => s.PAID === ids.length, 90_000, 500)
      t.mark("all paid")
      await assertPaidOnceEach(system, ids)
      assert.isAbove(second.ofType("PAYMENT_RESULT").length, 0, "the new worker settled them")
      t.print()
    }), TEST_MS)

})
