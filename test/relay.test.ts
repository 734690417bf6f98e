/**
 * The outbox relay on the real PostgreSQL and the real Kafka broker (issue 10, item 6): one statement per
 * batch on the leader's connection, rows marked only after the broker acked them, a key's events in version
 * order on the topic. Leadership and failover: relay-failover.test.ts; the wake-up through LISTEN:
 * relay-wake.test.ts.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Option, Scope } from "effect"
import { waitFor } from "./support/waitFor.js"
import { assertVersionOrder, drained, leaderPid, newTrace, readTopic, startRelay, Suite, unpublished, writeOrders } from "./support/relay.js"

describe("relay", () => {
  layer(Suite("relay_batches"), { excludeTestServices: true, timeout: "120 seconds" })((it) => {
    it.scoped("a batch is one statement on the leader's connection; rows marked only after their ack; versions in order", () =>
      Effect.gen(function*() {
        // everything committed before the relay starts: 40 orders × 3 events = 120 rows, batches of 25
        const orders = yield* writeOrders(40)
        const trace = newTrace()
        const { relay, scope } = yield* startRelay(trace, { RELAY_BATCH_SIZE: "25" }, false)
        assert.strictEqual(yield* relay.publishBatch, 120)
        assert.strictEqual(yield* unpublished, 0)
        yield* Scope.close(scope, Exit.void)
        // the term's connection went back to the pool without the lock
        assert.deepStrictEqual(yield* leaderPid, [])
        assert.strictEqual(trace.batches, 5)
        // one statement per batch (it marks the batch before and reads the one after), plus the first read
        // and the last mark
        assert.strictEqual(trace.statements, 5 + 2)
        assert.deepStrictEqual(trace.markedEarly, [])

        // a small batch (under a tenth of RELAY_BATCH_SIZE): sent, then ONE statement marks it and reads the next —
        // two statements in all, not a read-ahead beside the send and a mark of its own as well (three)
        const one = yield* writeOrders(1)
        const small = newTrace()
        const { relay: smallRelay, scope: smallScope } = yield* startRelay(small, {}, false)
        assert.strictEqual(yield* smallRelay.publishBatch, 3)
        yield* Scope.close(smallScope, Exit.void)
        assert.deepStrictEqual([small.statements, small.batches, small.markedEarly], [2, 1, []])
        assert.strictEqual(yield* unpublished, 0)
        orders.push(...one)

        // now with the relay running while orders are written, batches of 7: reads overlap sends
        const live = newTrace()
        const { scope: liveScope } = yield* startRelay(live, { RELAY_BATCH_SIZE: "7", RELAY_POLL_MS: "60000" })
        const more = yield* writeOrders(40)
        yield* drained
        yield* Scope.close(liveScope, Exit.void)
        assert.deepStrictEqual(live.markedEarly, [])
        assert.isAbove(live.batches, 0)
        assertVersionOrder(yield* readTopic([...orders, ...more]), [...orders, ...more])
      }))

    it.scoped("a leader whose database session stops answering still lets go at shutdown: unlock abandoned, session ended", () =>
      Effect.gen(function*() {
        yield* writeOrders(2)
        // the lock of the test before may still be going (a session ended from our side exits a moment later)
        yield* waitFor("no relay leads", leaderPid, (pids) => pids.length === 0, Duration.seconds(20))
        const { relay, scope } = yield* startRelay(newTrace(), { RELAY_POLL_MS: "60000" })
        yield* waitFor("this relay leads", relay.isLeader, (leading) => leading, Duration.seconds(20))
        const [pid] = yield* leaderPid
        // the leader's backend answers nothing from now on (a database that hangs rather than drops)
        process.kill(pid!, "SIGSTOP")
        const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
        // a hang detector, not a speed bound: the unlock's share is 500 ms
        const closed = yield* Fiber.await(closing).pipe(Effect.timeout(Duration.seconds(20)), Effect.option)
        process.kill(pid!, "SIGCONT")
        assert.isTrue(Option.isSome(closed), "the relay's scope closed while its database session was not answering")
        // the session was ended from our side: once the backend runs again it sees that, and the lock goes with it
        yield* waitFor("the lock released", leaderPid, (pids) => pids.length === 0, Duration.seconds(20))
      }))
  })
})
