/**
 * The outbox relay on the real PostgreSQL and the real Kafka broker (issue 10, item 6): one statement per
 * batch on the leader's connection, rows marked only after the broker acked them, a key's events in version
 * order on the topic, and leadership by a session advisory lock — a standby takes over when the leader's
 * backend is terminated, and the old leader sends nothing more.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import {
  ConfigProvider,
  Context,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  FiberRef,
  HashMap,
  HashSet,
  Layer,
  Logger,
  LogLevel,
  Metric,
  Option,
  Scope
} from "effect"
import { AppendProjections, PgStores } from "../src/Stores.js"
import { OrderActors } from "../src/actor/OrderActors.js"
import { CrashPoints } from "../src/CrashPoints.js"
import type { OrderId, PaymentId } from "../src/domain/Order.js"
import { decide, fold } from "../src/domain/OrderDecider.js"
import { EventStore } from "../src/eventstore/EventStore.js"
import { PgEventStore } from "../src/eventstore/PgEventStore.js"
import { fromMessage } from "../src/kafka/Envelope.js"
import { Kafka } from "../src/kafka/Kafka.js"
import { Outbox, RELAY_LOCK } from "../src/outbox/Outbox.js"
import { OutboxSignal, PgOutboxSignal } from "../src/outbox/OutboxSignal.js"
import { Relay, relayLeader, RelayLive } from "../src/outbox/Relay.js"
import { OrderAfterAppend } from "../src/projection/OrdersTable.js"
import { cmd, newId, newOrderId } from "./support/fixtures.js"
import { onTestDatabase } from "./support/TestDatabase.js"
import { suiteId, TestKafka } from "./support/TestKafka.js"
import { waitFor } from "./support/waitFor.js"

/** What one relay instance did: its sends (started, acked) and its log lines' types. */
interface Trace {
  sendsStarted: number
  /** positions whose send the broker acknowledged */
  readonly acked: Set<string>
  readonly logTypes: Array<string>
  /** markAndRead statements, and the ones that returned rows (batches) */
  statements: number
  batches: number
  /** positions that were marked before their ack (must stay empty) */
  readonly markedEarly: Array<string>
}

const newTrace = (): Trace => ({ sendsStarted: 0, acked: new Set(), logTypes: [], statements: 0, batches: 0, markedEarly: [] })

/** Kafka that records this relay's sends (the real broker underneath). */
const tracedKafka = (trace: Trace) =>
  Layer.effect(
    Kafka,
    Effect.map(Kafka, (kafka) =>
      Kafka.of({
        ...kafka,
        send: (topic, messages) =>
          Effect.suspend(() => {
            trace.sendsStarted++
            return kafka.send(topic, messages).pipe(Effect.tap(() =>
              Effect.sync(() => {
                for (const m of messages) {
                  const decoded = fromMessage(m.value)
                  if (Either.isRight(decoded)) trace.acked.add(decoded.right.envelope.position)
                }
              })
            ))
          })
      }))
  )

/** The outbox, counting this relay's statements and checking that it marks only acked rows. */
const tracedOutbox = (trace: Trace) =>
  Layer.effect(
    Outbox,
    Effect.map(Outbox, (outbox) =>
      Outbox.of({
        lead: Effect.map(outbox.lead, Option.map((leader) => ({
          markAndRead: (acked, inFlight, limit) =>
            Effect.suspend(() => {
              trace.statements++
              for (const p of acked) if (!trace.acked.has(String(p))) trace.markedEarly.push(String(p))
              return Effect.tap(leader.markAndRead(acked, inFlight, limit), (rows) =>
                Effect.sync(() => {
                  if (rows.length > 0) trace.batches++
                }))
            })
        })))
      }))
  )

const collectLogTypes = (trace: Trace) =>
  Logger.make(({ annotations }) => {
    const type = HashMap.get(annotations, "type")
    if (Option.isSome(type)) trace.logTypes.push(String(type.value))
  })

/**
 * One relay "process" in the test: its own traced Kafka and outbox (so its own leadership connection); the
 * role's loop running, or (`loop: false`) only the service, driven by the test.
 */
const startRelay = (trace: Trace, env: Record<string, string>, loop = true) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      (loop ? RelayLive : Layer.empty).pipe(
        Layer.provideMerge(Relay.Default),
        Layer.provide(tracedOutbox(trace)),
        Layer.provide(tracedKafka(trace)),
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))
      ),
      scope
    ).pipe(
      Effect.locallyWith(FiberRef.currentLoggers, HashSet.add(collectLogTypes(trace))),
      // LEADER_ACQUIRED is an Info line (tests log Warning and above)
      Logger.withMinimumLogLevel(LogLevel.Info)
    )
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    return { scope, relay: Context.get(context, Relay) }
  })

const unpublished = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ n: number }>`SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL`).pipe(
  Effect.map((rows) => rows[0]!.n),
  Effect.orDie
)

const drained = waitFor("outbox drained", unpublished, (n) => n === 0)

/** Orders with three events each (placed, payment requested, paid), appended concurrently. */
const writeOrders = (count: number) =>
  Effect.flatMap(OrderActors, (actors) =>
    Effect.forEach(
      Array.from({ length: count }, () => newOrderId()),
      (id) =>
        Effect.gen(function*() {
          const payment = newId<PaymentId>()
          yield* actors.execute(cmd.place(id))
          yield* actors.execute(cmd.start(payment, id))
          yield* actors.execute(cmd.succeed(payment, id))
          return id
        }).pipe(Effect.orDie),
      { concurrency: 16 }
    ))

/** The suite's topic read until every order's three versions were seen: per key, versions in topic order. */
const readTopic = (orders: ReadonlyArray<OrderId>) =>
  Effect.scoped(Effect.gen(function*() {
    const kafka = yield* Kafka
    const consumer = yield* kafka.consumer(`relay-test-${newId()}`, [kafka.topics.orderEvents]).pipe(Effect.orDie)
    const byKey = new Map<string, Array<number>>()
    yield* Effect.promise(() =>
      consumer.run({
        eachMessage: async ({ message }) => {
          const decoded = fromMessage(message.value?.toString() ?? "")
          if (Either.isLeft(decoded)) return
          const key = decoded.right.envelope.orderId
          byKey.set(key, [...(byKey.get(key) ?? []), decoded.right.envelope.version])
        }
      })
    )
    const complete = () => orders.every((id) => new Set(byKey.get(id)).size === 3)
    yield* waitFor("the topic read back", Effect.sync(complete), (done) => done, "30 seconds")
    return byKey
  }))

/** Each order's first copies on the topic are versions 1, 2, 3 in that order (duplicates allowed after). */
const assertVersionOrder = (byKey: Map<string, Array<number>>, orders: ReadonlyArray<OrderId>) => {
  for (const id of orders) {
    const versions = byKey.get(id) ?? []
    const firsts = versions.filter((v, i) => versions.indexOf(v) === i)
    assert.deepStrictEqual(firsts, [1, 2, 3], `order ${id}: versions on the topic ${versions.join(",")}`)
  }
}

const leaderPid = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ pid: number }>`
    SELECT pid FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND objid = ${RELAY_LOCK} AND objsubid = 1
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).pipe(
  Effect.map((rows) => rows.map((r) => r.pid)),
  Effect.orDie
)

const terminate = (pid: number) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT pg_terminate_backend(${pid})`).pipe(Effect.orDie)

const Suite = (suite: string) =>
  onTestDatabase(
    suite,
    OrderActors.Default.pipe(Layer.provideMerge(Layer.mergeAll(PgStores, CrashPoints.none, TestKafka(suiteId(suite), 3))))
  )

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
  })

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
        // a send whose statement had just succeeded when the backend was terminated may still start: one
        // batch at most (two halves); nothing after that
        assert.isAtMost(a.sendsStarted - sentByA, 2)
        assert.isTrue(yield* relayB.relay.isLeader)
        assert.include(a.logTypes, "LEADER_LOST")
        assert.deepStrictEqual([...a.markedEarly, ...b.markedEarly], [])
        assertVersionOrder(yield* readTopic(orders), orders)
        yield* Scope.close(relayA.scope, Exit.void)
        yield* Scope.close(relayB.scope, Exit.void)
      }))
  })
})

describe("relay wake-up across processes", () => {
  // regression: the append NOTIFYd with an empty payload, which @effect/sql-pg's `listen` drops, so relays in
  // other processes only ever published on their poll (found by the API work's watch stream)
  layer(onTestDatabase("relay_wake", Layer.mergeAll(PgOutboxSignal, PgEventStore.pipe(Layer.provide(AppendProjections)))), { excludeTestServices: true, timeout: "60 seconds" })(
    (it) => {
      it.effect("an append in another process wakes this process's relay through LISTEN", () =>
        Effect.gen(function*() {
          const signal = yield* OutboxSignal
          const store = yield* EventStore
          // the LISTEN connection is up once a first notification arrives: append until one wakes us
          const woken = yield* Effect.forkScoped(signal.await(Duration.minutes(5)))
          const orderId = newOrderId()
          const events = Either.getOrThrow(decide(cmd.place(orderId), undefined))
          yield* Effect.sleep(Duration.millis(500))
          yield* store.append({ streamId: orderId, expectedVersion: 0, events, metadata: {}, inputs: Context.make(OrderAfterAppend, fold(events)!) })
          const exit = yield* Fiber.await(woken).pipe(Effect.timeout(Duration.seconds(20)), Effect.option)
          assert.isTrue(exit._tag === "Some", "the relay was not woken by the append's NOTIFY")
        }).pipe(Effect.scoped))
    }
  )
})
