/**
 * The worker role as real, separate OS processes (`node --import tsx src/main.ts worker`), as deployed, with
 * payment-provider and api+relay processes, on a fresh database and the suite's own topics and group
 * (docs/ARCHITECTURE.md "Payment worker", "Processes"; issue 10):
 * - kill -9 of one of two workers mid-load: the survivor logs the rebalance and takes over its partitions;
 *   every order PAID, one successful charge each, no event appended twice. The sweeper is pushed out of reach
 *   (SWEEP_AFTER_MS 10 min) so that it is Kafka's redelivery to the survivor, not the sweeper, that saves the
 *   dead worker's uncommitted messages.
 * (SIGTERM to a worker during a provider outage: worker-processes.test.ts.)
 */
import { afterAll, afterEach, assert, describe, it } from "vitest"
import { pollUntil, type RoleProcess, sleep } from "./support/Processes.js"
import {
  assertPaidOnceEach,
  held,
  PARTITIONS,
  placeOrders,
  startSystem,
  STARTUP_MS,
  stopAll,
  stopProcesses,
  TEST_MS,
  timeline,
  withTails
} from "./support/WorkerSystem.js"

afterEach(stopProcesses)
afterAll(stopAll)

describe("worker roles as separate processes", () => {
  it("two workers, one killed mid-load: nothing lost, duplicates absorbed, rebalance logged", () =>
    withTails(async () => {
      // no sweeper within the test's time: the survivor must get the dead worker's messages from Kafka
      const t = timeline("kill")
      const system = await startSystem("proc_kill", ["worker-a", "worker-b"], { SWEEP_AFTER_MS: "600000" })
      t.mark("system up")
      const [survivor, victim] = system.workers as [RoleProcess, RoleProcess]
      // both in the group, the partitions split between them
      await pollUntil("both workers holding partitions", async () => [held(survivor), held(victim)], ([a, b]) =>
        a!.length > 0 && b!.length > 0 && a!.length + b!.length === PARTITIONS && a!.every((p) => !b!.includes(p)), STARTUP_MS, 250)
      const victimPartitions = held(victim)
      t.mark("workers joined")

      // bounded load: 100 orders, 5 every 200 ms (about 4 s); the first half in the background, the victim
      // killed once it is busy (it has paid some orders), then the second half: the kill is always mid-load
      const total = 100
      const ids: Array<string> = []
      const place = async (n: number) => {
        for (let i = 0; i < n; i += 5) {
          const round = placeOrders(system, 5)
          await sleep(200)
          ids.push(...await round)
        }
      }
      const firstHalf = place(total / 2)
      await pollUntil("the victim busy", async () => ({ posted: ids.length, paid: victim.ofType("PAYMENT_RESULT").length }), (s) =>
        s.posted >= 30 && s.paid >= 3, 60_000, 50)
      const killedAt = Date.now()
      t.mark("killed")
      victim.child.kill("SIGKILL")
      await firstHalf
      await place(total / 2)
      await victim.exited
      assert.strictEqual(victim.exit!.signal, "SIGKILL")
      assert.strictEqual(ids.length, total)

      // the survivor sees the group rebalance (the dead member's session expires) and takes every partition
      await survivor.waitForLine("REBALANCE after the kill", (l) => l.type === "REBALANCE", 60_000, killedAt)
      await pollUntil("the survivor holding every partition", async () => held(survivor), (p) => p.length === PARTITIONS, 60_000, 250)
      t.mark("rebalanced")
      assert.includeMembers(held(survivor), victimPartitions)

      await pollUntil("every order PAID", () => system.states(ids), (s) => s.PAID === ids.length, 90_000, 500)
      t.mark("all paid")
      await assertPaidOnceEach(system, ids)
      // no event twice: each stream is OrderPlaced, PaymentRequested, OrderPaid, once each. A failed provider
      // call (a timeout: this machine is shared and sometimes very loaded) rightly adds PaymentRetryScheduled
      // events between the last two; they are allowed only when a worker logged such a failure.
      const providerFailed = [survivor, victim].some((w) => w.ofType("PAYMENT_CALL_FAILED").length > 0)
      const streams = await system.sql<{ stream_id: string; types: Array<string> }>((s) =>
        s`SELECT stream_id::text, array_agg(type ORDER BY version) AS types
          FROM events WHERE stream_id = ANY(${ids}::uuid[]) GROUP BY stream_id`)
      assert.strictEqual(streams.length, total)
      const expected = (types: ReadonlyArray<string>) => {
        const settled = types.filter((t) => t !== "PaymentRetryScheduled")
        const retries = types.length - settled.length
        return JSON.stringify(settled) === JSON.stringify(["OrderPlaced", "PaymentRequested", "OrderPaid"]) &&
          types[types.length - 1] === "OrderPaid" && (retries === 0 || providerFailed)
      }
      const odd = streams.filter((s) => !expected(s.types))
      assert.deepStrictEqual(odd, [], `every stream: OrderPlaced, PaymentRequested, OrderPaid, once each (provider failed: ${providerFailed})`)
      const [events] = await system.sql<{ n: number; d: number; retries: number }>((s) =>
        s`SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d,
                 count(*) FILTER (WHERE type = 'PaymentRetryScheduled')::int AS retries
          FROM events WHERE stream_id = ANY(${ids}::uuid[])`)
      assert.strictEqual(events!.d, events!.n, "no event id twice")
      assert.strictEqual(events!.n - events!.retries, 3 * total)
      // what the survivor absorbed (not asserted: whether the victim died holding finished-but-uncommitted
      // messages is up to timing)
      console.log(JSON.stringify({
        victimPartitions,
        survivorPaid: survivor.ofType("PAYMENT_RESULT").length,
        victimPaid: victim.ofType("PAYMENT_RESULT").length,
        duplicatesSkipped: survivor.ofType("DUPLICATE_EVENT").length,
        redeliveries: survivor.ofType("REDELIVERY").length,
        providerCallsFailed: [survivor, victim].reduce((n, w) => n + w.ofType("PAYMENT_CALL_FAILED").length, 0),
        retriesScheduled: events!.retries,
        rebalanceAfterKillMs: (survivor.ofType("REBALANCE").find((c) => c.at >= killedAt)?.at ?? 0) - killedAt
      }))
      t.print()
    }), TEST_MS)
})
