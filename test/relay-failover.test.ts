/**
 * The outbox relay's leadership on the real PostgreSQL and the real Kafka broker (issue 10, item 6): by a
 * session advisory lock — a standby takes over when the leader's backend is terminated (idle, or under load),
 * and the old leader sends nothing more; every event on the topic in version order.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Exit, Fiber, Metric, Scope } from "effect"
import { relayLeader } from "../src/outbox/Relay.js"
import { assertVersionOrder, drained, leaderPid, newTrace, readTopic, startRelay, Suite, terminate, writeOrders } from "./support/relay.js"
import { waitFor } from "./support/waitFor.js"

describe("relay", () => {
  layer(Suite("relay_failover"), { excludeTestServices: true, timeout: "120 seconds" })((it) => {
    it.scoped("leader's backend terminated while idle → the standby takes over, the old leader sends nothing more", () =>
      Effect.gen(function*() {
        const a = newTrace()
        const b = newTrace()
        // A would retry the lock only after a minute: whatever is published after its loss is B's
        const relayA = yield* startRelay(a, { RELAY_POLL_MS: "200", RELAY_STANDBY_RETRY_MS: "60000" })
        yield* waitFor("A leads", relayA.relay.isLeader, (x) => x)
        const relayB = yield* startRelay(b, { RELAY_POLL_MS: "200", RELAY_STANDBY_RETRY_MS: "100" })
        const first = yield* writeOrders(10)
        yield* drained
        assert.isFalse(yield* relayB.relay.isLeader)
        assert.strictEqual(b.sendsStarted, 0)
        assert.isAbove(a.sendsStarted, 0)

        const pids = yield* leaderPid
        assert.strictEqual(pids.length, 1)
        const sentByA = a.sendsStarted
        yield* terminate(pids[0]!)
        yield* waitFor("B leads", relayB.relay.isLeader, (x) => x)
        const second = yield* writeOrders(10)
        yield* drained
        assert.strictEqual(a.sendsStarted, sentByA, "the old leader sent after losing its lock")
        assert.isFalse(yield* relayA.relay.isLeader)
        assert.isAbove(b.sendsStarted, 0)
        assert.include(a.logTypes, "LEADER_LOST")
        assert.include(b.logTypes, "LEADER_ACQUIRED")
        assert.deepStrictEqual([...a.markedEarly, ...b.markedEarly], [])
        assert.deepStrictEqual(yield* Effect.map(leaderPid, (p) => p.length), 1)
        assert.strictEqual(yield* Metric.value(relayLeader).pipe(Effect.map((g) => g.value)), 1)
        assertVersionOrder(yield* readTopic([...first, ...second]), [...first, ...second])
        yield* Scope.close(relayA.scope, Exit.void)
        yield* Scope.close(relayB.scope, Exit.void)
        assert.strictEqual(yield* Metric.value(relayLeader).pipe(Effect.map((g) => g.value)), 0)
      }))

    it.scoped("leader's backend terminated under load → the standby finishes, every event on the topic in order", () =>
      Effect.gen(function*() {
        const a = newTrace()
        const b = newTrace()
        const env = { RELAY_BATCH_SIZE: "10", RELAY_POLL_MS: "200" }
        const relayA = yield* startRelay(a, { ...env, RELAY_STANDBY_RETRY_MS: "60000" })
        yield* waitFor("A leads", relayA.relay.isLeader, (x) => x)
        const relayB = yield* startRelay(b, { ...env, RELAY_STANDBY_RETRY_MS: "100" })
        const writing = yield* Effect.fork(writeOrders(60))
        yield* waitFor("A publishing", Effect.sync(() => a.sendsStarted), (n) => n >= 4)
        const [pid] = yield* leaderPid
        yield* terminate(pid!)
        const sentByA = a.sendsStarted
        const orders = yield* Fiber.join(writing)
        yield* drained
        // after the termination A may still send the batch in flight (both halves, if it had not started) and
        // the batch its overlapped statement had already read (two halves) — its next statement then fails and
        // the term ends: at most 4 sends, nothing after that (seen: 3 under CI load, against a bound of 2 that
        // forgot the batch already read). Duplicates on the wire are the design's; the order is checked below.
        assert.isAtMost(a.sendsStarted - sentByA, 4)
        assert.isTrue(yield* relayB.relay.isLeader)
        assert.include(a.logTypes, "LEADER_LOST")
        assert.deepStrictEqual([...a.markedEarly, ...b.markedEarly], [])
        assertVersionOrder(yield* readTopic(orders), orders)
        yield* Scope.close(relayA.scope, Exit.void)
        yield* Scope.close(relayB.scope, Exit.void)
      }))
  })
})
