/**
 * The worker side of the payment properties (p4-p5-p10-payments.test.ts), as production runs it: per "process"
 * fresh actors, payment processor and relay, the keyed dispatcher (src/kafka/KeyedDispatcher.ts) over the
 * worker's message handler (src/payment/PaymentWorker.ts), the scheduler's re-drive (makeRedriver) and its check
 * of parked payments (makeParkedCheck) — fed by
 * fetches from the committed offsets of an in-memory topic of PARTITIONS partitions. Kept across processes, as
 * Kafka and the database keep them: the topic, the committed offsets, the stores, the provider's ledger.
 */
import { Context, Deferred, Effect, Exit, Layer, Scope } from "effect"
import { OrderActors } from "../src/actor/OrderActors.js"
import { CrashPoints, type CrashPoint, isSimulatedCrash } from "../src/CrashPoints.js"
import { DeadLetters } from "../src/deadletter/DeadLetters.js"
import type { OrderId } from "../src/domain/Order.js"
import { fold } from "../src/domain/OrderDecider.js"
import { EventStore } from "../src/eventstore/EventStore.js"
import { type IncomingMessage, Kafka, type OutgoingMessage } from "../src/kafka/Kafka.js"
import { makeKeyedDispatcher } from "../src/kafka/KeyedDispatcher.js"
import { Relay } from "../src/outbox/Relay.js"
import { makeParkedCheck, makeRedriver } from "../src/payment/PaymentScheduler.js"
import { makeMessageHandler } from "../src/payment/PaymentWorker.js"
import { MemoryTopic, processLayer } from "./harness.js"

export type RelayCrash = "none" | Extract<CrashPoint, `relay.${string}`>

/** The partitions of the in-memory topic: an order's messages go to one, by key, as Kafka's partitioner does. */
export const PARTITIONS = 3
const partitionOf = (key: string) => [...key].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7) % PARTITIONS

/** The topic as the consumer sees it: per partition, the messages in the order they were sent, offset = index. */
export const partitionLogs = (topic: ReadonlyArray<OutgoingMessage>, name: string) => {
  const logs = Array.from({ length: PARTITIONS }, () => [] as Array<IncomingMessage>)
  for (const m of topic) {
    const partition = partitionOf(m.key)
    const log = logs[partition]!
    log.push({
      topic: name,
      partition,
      offset: String(log.length),
      key: Buffer.from(m.key),
      value: Buffer.from(m.value),
      headers: Object.entries(m.headers).map(([k, v]) => [k, Buffer.from(v)] as const)
    })
  }
  return logs
}

/** The worker processes of one property run over its durable context (see the module header). */
export const makeWorkerDriver = (durable: Context.Context<any>) =>
  Effect.gen(function*() {
    const crashes = Context.get(durable, CrashPoints)
    const topic = Context.get(durable, MemoryTopic)
    const store = Context.get(durable, EventStore)
    const orderEvents = Context.get(durable, Kafka).topics.orderEvents
    /** What the consumer group committed, per partition (Kafka keeps it across processes). */
    const committed = new Map<number, number>()
    /** Messages whose handling finished, by some process (partition/offset). */
    const handled = new Set<string>()
    /** Every dead letter written, in order (the table dedupes by source; this sees each call). */
    const parks: Array<{ key: string; attempts: number; message: IncomingMessage }> = []

    /**
     * A process: fresh actors, payment processor, relay, and its worker as production runs it — the keyed
     * dispatcher (src/kafka/KeyedConsumer.ts) over the message handler (PaymentWorker.ts) — and the scheduler's
     * re-drive. A worker crash point that fires kills the process: the crashing fiber never returns, `crashed`
     * completes, and the driver closes the process's scope (every fiber of it interrupted, as by kill -9).
     */
    const start = Effect.gen(function*() {
      const scope = yield* Scope.make()
      const crashed = yield* Deferred.make<void>()
      const dying = Layer.succeed(CrashPoints, {
        ...crashes,
        hit: (point) =>
          crashes.hit(point).pipe(Effect.catchAllDefect((d) =>
            isSimulatedCrash(d) && point.startsWith("worker.")
              ? Deferred.succeed(crashed, undefined).pipe(Effect.zipRight(Effect.never))
              : Effect.die(d)
          ))
      })
      const recording = Layer.effect(DeadLetters, Effect.map(DeadLetters, (inner) =>
        DeadLetters.make({
          ...inner,
          park: (p) =>
            inner.park(p).pipe(Effect.tap(() =>
              Effect.sync(() => parks.push({ key: Buffer.from(p.message.key ?? []).toString(), attempts: p.attempts, message: p.message }))
            ))
        })))
      const context = yield* Layer.buildWithScope(
        Layer.mergeAll(processLayer, recording).pipe(Layer.provideMerge(dying)),
        scope
      ).pipe(Effect.provide(durable))
      const handle = yield* makeMessageHandler.pipe(Effect.provide(context))
      const redrive = yield* makeRedriver.pipe(Effect.provide(context), Effect.provide(durable))
      const checkParked = yield* makeParkedCheck.pipe(Effect.provide(context), Effect.provide(durable))
      const dispatcher = yield* makeKeyedDispatcher((m) =>
        handle(m).pipe(Effect.tap(() => Effect.sync(() => handled.add(`${m.partition}/${m.offset}`))))
      ).pipe(Scope.extend(scope))
      return {
        scope,
        crashed,
        dispatcher,
        redrive,
        checkParked,
        /** The fetch position per partition: from the committed offset at start. */
        position: new Map(committed),
        actors: Context.get(context, OrderActors),
        relay: Context.get(context, Relay)
      }
    })
    let process = yield* start
    const restart = Effect.gen(function*() {
      yield* Scope.close(process.scope, Exit.void)
      process = yield* start
    })
    /** Run `effect` in the current process; "crashed" when a worker crash point killed the process meanwhile. */
    const untilCrash = <A>(effect: Effect.Effect<A>) =>
      Effect.raceFirst(Effect.map(effect, () => "done" as const), Effect.as(Deferred.await(process.crashed), "crashed" as const))

    /** Relay passes until the outbox is empty; a crash at a named point restarts the process. */
    const drainOutbox = (relayCrashes: Array<RelayCrash>) => Effect.gen(function*() {
      for (let pass = 0; pass < 50; pass++) {
        const next = relayCrashes.shift()
        if (next !== undefined && next !== "none") yield* crashes.arm(next)
        const exit = yield* Effect.exit(process.relay.publishBatch)
        if (Exit.isSuccess(exit)) {
          if (exit.value === 0 && relayCrashes.length === 0) return
          continue
        }
        if (exit.cause._tag === "Die" && isSimulatedCrash(exit.cause.defect)) {
          yield* restart
          continue
        }
        return yield* Effect.failCause(exit.cause)
      }
    })
    type Process = typeof process
    /** A process's consumer fetches from its position to the end of each partition (from the committed offset,
     * as after a rebalance, when `refetch`); its dispatcher skips what it holds or finished. */
    const fetch = (proc: Process, refetch: boolean) =>
      Effect.sync(() => {
        for (const [partition, log] of partitionLogs(topic, orderEvents).entries()) {
          const from = refetch ? committed.get(partition) ?? 0 : proc.position.get(partition) ?? committed.get(partition) ?? 0
          for (let offset = from; offset < log.length; offset++) proc.dispatcher.offer(log[offset]!)
          proc.position.set(partition, log.length)
        }
      })

    /**
     * A rebalance's handover: a second worker process takes the partitions and fetches from the committed
     * offsets while this one still works on what it holds — copies of one message handled by two processes
     * at once, each with its own actors (the store's version check and the inbox decide). Then the peer leaves.
     */
    const handover = Effect.gen(function*() {
      const peer = yield* start
      yield* fetch(process, true)
      yield* fetch(peer, true)
      const both = Effect.all([process.dispatcher.awaitIdle, peer.dispatcher.awaitIdle], { concurrency: 2, discard: true })
      const outcome = yield* Effect.raceFirst(
        Effect.as(both, "done" as const),
        Effect.raceFirst(Effect.as(Deferred.await(process.crashed), "crashed" as const), Effect.as(Deferred.await(peer.crashed), "peer" as const))
      )
      yield* Scope.close(peer.scope, Exit.void)
      if (outcome === "crashed") {
        yield* commit(process)
        yield* restart
      }
    })

    /** The consumer's offset commit (periodic in production): the latest one a process can make is at its
     * crash, with its other messages still in flight — exactly when committing past one would lose it. */
    const commit = (proc: Process) =>
      Effect.sync(() => {
        for (const c of proc.dispatcher.committable()) committed.set(c.partition, Number(c.offset))
      })

    /** Orders whose payment or a refund waits for a due retry (the scheduler's pick; parked ones wait for the
     * operator). */
    const dueRetries = (orderIds: ReadonlyArray<OrderId>) => Effect.gen(function*() {
      const due: Array<{ readonly id: OrderId; readonly why: "RETRY_DUE" | "REFUND_DUE" }> = []
      for (const id of orderIds) {
        const events = (yield* store.readStream(id)).map((r) => r.event)
        const last = events[events.length - 1]
        if (last?._tag === "PaymentRetryScheduled" && last.dueAt !== null) due.push({ id, why: "RETRY_DUE" })
        const refunds = fold(events)?.refunds ?? []
        if (refunds.some((r) => r.status === "pending" && r.dueAt !== null)) due.push({ id, why: "REFUND_DUE" })
      }
      return due
    })

    /** Consume until nothing is left: fetch, let the dispatcher go idle (restart after a crash and fetch again
     * from the committed offsets), commit what it may, run the scheduler's due retries; repeat. */
    const settle = (orderIds: ReadonlyArray<OrderId>, refetch: boolean) =>
      Effect.gen(function*() {
        yield* fetch(process, refetch)
        for (let round = 0; round < 200; round++) {
          if ((yield* untilCrash(process.dispatcher.awaitIdle)) === "crashed") {
            yield* commit(process)
            yield* restart
            yield* fetch(process, false)
            continue
          }
          yield* commit(process)
          const due = yield* dueRetries(orderIds)
          if (due.length === 0) return true
          if ((yield* untilCrash(Effect.forEach(due, ({ id, why }) => process.redrive(id, why), { discard: true }))) === "crashed") {
            yield* commit(process)
            yield* restart
            yield* fetch(process, false)
          }
        }
        return false
      })

    /** The scheduler's check of parked payments, as it runs once their calls have ended (SWEEP_AFTER_MS later). */
    const checkParked = (orderIds: ReadonlyArray<OrderId>) =>
      Effect.forEach(orderIds, (id) => process.checkParked(id), { discard: true })

    /** An operator replays every dead letter written so far: its exact message, back on the topic. */
    const replayParked = () => {
      for (const p of [...parks]) {
        topic.push({
          key: Buffer.from(p.message.key ?? []).toString(),
          value: Buffer.from(p.message.value ?? []).toString(),
          headers: Object.fromEntries(p.message.headers.map(([k, v]) => [k, Buffer.from(v).toString()]))
        })
      }
    }

    return {
      replayParked,
      /** The current process's actors (a restart replaces them). */
      actors: () => process.actors,
      relay: () => process.relay,
      drainOutbox,
      handover,
      settle,
      checkParked,
      committed,
      handled,
      parks,
      partitionLogs: () => partitionLogs(topic, orderEvents)
    } as const
  })
