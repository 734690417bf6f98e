/**
 * Helpers of the relay tests (relay.test.ts, relay-failover.test.ts) on the real PostgreSQL and Kafka: relay
 * "processes" with traced Kafka and outbox (their sends, acks, statements, batches and log lines), orders
 * written concurrently, the topic read back in version order, and the leader's advisory-lock backend.
 */
import { collectLogTypes } from "./logTypes.js"
import { SqlClient } from "@effect/sql"
import { assert } from "@effect/vitest"
import {
  ConfigProvider,
  Context,
  Effect,
  Either,
  Exit,
  FiberRef,
  HashSet,
  Layer,
  Logger,
  LogLevel,
  Option,
  Scope
} from "effect"
import { PgStores } from "../../src/Stores.js"
import { OrderActors } from "../../src/actor/OrderActors.js"
import { CrashPoints } from "../../src/CrashPoints.js"
import type { OrderId, PaymentId } from "../../src/domain/Order.js"
import { fromMessage } from "../../src/kafka/Envelope.js"
import { Kafka } from "../../src/kafka/Kafka.js"
import { Outbox, RELAY_LOCK } from "../../src/outbox/Outbox.js"
import { Relay, RelayLive } from "../../src/outbox/Relay.js"
import { cmd, newId, newOrderId } from "./fixtures.js"
import { onTestDatabase } from "./TestDatabase.js"
import { suiteId, TestKafka } from "./TestKafka.js"
import { waitFor } from "./waitFor.js"

/** What one relay instance did: its sends (started, acked) and its log lines' types. */
export interface Trace {
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

export const newTrace = (): Trace => ({ sendsStarted: 0, acked: new Set(), logTypes: [], statements: 0, batches: 0, markedEarly: [] })

/** Kafka that records this relay's sends (the real broker underneath). */
export const tracedKafka = (trace: Trace) =>
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
export const tracedOutbox = (trace: Trace) =>
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


/**
 * One relay "process" in the test: its own traced Kafka and outbox (so its own leadership connection); the
 * role's loop running, or (`loop: false`) only the service, driven by the test.
 */
export const startRelay = (trace: Trace, env: Record<string, string>, loop = true) =>
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
      Effect.locallyWith(FiberRef.currentLoggers, HashSet.add(collectLogTypes(trace.logTypes))),
      // LEADER_ACQUIRED is an Info line (tests log Warning and above)
      Logger.withMinimumLogLevel(LogLevel.Info)
    )
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    return { scope, relay: Context.get(context, Relay) }
  })

export const unpublished = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ n: number }>`SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL`).pipe(
  Effect.map((rows) => rows[0]!.n),
  Effect.orDie
)

export const drained = waitFor("outbox drained", unpublished, (n) => n === 0)

/** Orders with three events each (placed, payment requested, paid), appended concurrently. */
export const writeOrders = (count: number) =>
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
export const readTopic = (orders: ReadonlyArray<OrderId>) =>
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
export const assertVersionOrder = (byKey: Map<string, Array<number>>, orders: ReadonlyArray<OrderId>) => {
  for (const id of orders) {
    const versions = byKey.get(id) ?? []
    const firsts = versions.filter((v, i) => versions.indexOf(v) === i)
    assert.deepStrictEqual(firsts, [1, 2, 3], `order ${id}: versions on the topic ${versions.join(",")}`)
  }
}

export const leaderPid = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ pid: number }>`
    SELECT pid FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND objid = ${RELAY_LOCK} AND objsubid = 1
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).pipe(
  Effect.map((rows) => rows.map((r) => r.pid)),
  Effect.orDie
)

export const terminate = (pid: number) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT pg_terminate_backend(${pid})`).pipe(Effect.orDie)

export const Suite = (suite: string) =>
  onTestDatabase(
    suite,
    OrderActors.Default.pipe(Layer.provideMerge(Layer.mergeAll(PgStores, CrashPoints.none, TestKafka(suiteId(suite), 3))))
  )
