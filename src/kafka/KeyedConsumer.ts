/**
 * A supervised, keyed Kafka consumer (docs/ARCHITECTURE.md). The caller supplies "handle one message"; this module does
 * the rest:
 * - messages of one key run in order, different keys concurrently, across batches and fetches: a batch is
 *   taken (offsets resolved, so kafkajs fetches on) and handed to per-key queues at once;
 * - the committed offset of a partition is the end of its contiguous prefix of finished messages
 *   (KeyedDispatcher.ts, OffsetTracker.ts), committed every `commitIntervalMs`, on rebalance and at shutdown:
 *   never past an unfinished message; at most `maxInFlightPerPartition` unfinished messages per partition (the partition is
 *   paused beyond, resumed below half);
 * - a message fetched again while we hold it (after a rebalance or a restart) is not taken twice (logged as
 *   REDELIVERY); after a rebalance, queued messages of partitions no longer ours are dropped, not handled;
 * - kafkajs never restarts the consumer itself: a crash (or an unexpected stop, or a failed connect) is
 *   logged as CONSUMER_CRASH and the consumer is rebuilt with exponential backoff; rebalances are REBALANCE
 *   lines, failed commits COMMIT_FAILED; `status` tells readiness whether the consumer is really consuming;
 * - shutdown (scope close): stop fetching, give in-flight work until the deadline, interrupt the rest,
 *   commit what finished, disconnect, log SHUTDOWN.
 * `handle` must be total (contain its failures); a defect that escapes it is logged and the message handled
 * again after a pause, so a bug cannot skip a message nor stop the others.
 */
import { Cause, Deferred, Duration, Effect, Exit, Metric, Runtime, Schedule, type Scope } from "effect"
import type { Consumer, EachBatchPayload } from "kafkajs"
import { type ShutdownBudget, shutdownStep, within } from "../Shutdown.js"
import { type IncomingMessage, Kafka, fromKafkaHeaders } from "./Kafka.js"
import { type ConsumerState, type ConsumerStatus, consumerMetrics } from "./ConsumerStatus.js"
import { makeKeyedDispatcher, tpKey } from "./KeyedDispatcher.js"

export { type ConsumerStatus, consumerMetrics }

export interface KeyedConsumerOptions {
  readonly groupId: string
  readonly topics: ReadonlyArray<string>
  readonly handle: (message: IncomingMessage) => Effect.Effect<void>
  readonly maxInFlightPerPartition: number
  /** Messages handled at once across all partitions (the others wait their turn). */
  readonly maxConcurrent?: number
  readonly commitIntervalMs: number
  /** From the start of shutdown: how long in-flight messages may take before they are interrupted, then how
   * long the final commit and leaving the group may take each (src/Shutdown.ts shutdownBudget). */
  readonly shutdown: Pick<ShutdownBudget, "graceMs" | "commitMs" | "leaveMs">
  /**
   * Messages to finish without handling, judged from headers alone before anything is decoded (events this
   * consumer does not act on); they still count for the committed offset, in their place.
   */
  readonly skip?: (message: IncomingMessage) => boolean
  /** Run before each batch is taken; a defect here crashes the consumer (tests use it to inject a crash). */
  readonly beforeBatch?: Effect.Effect<void>
}

/** Run a keyed consumer until the scope closes; returns its status (for readiness and tests). */
export const runKeyedConsumer = (options: KeyedConsumerOptions): Effect.Effect<Effect.Effect<ConsumerStatus>, never, Kafka | Scope.Scope> =>
  Effect.gen(function*() {
    const kafka = yield* Kafka
    const m = consumerMetrics(options.groupId)
    const log = (level: "Info" | "Warning" | "Error", msg: string, type: string, fields: Record<string, unknown> = {}) =>
      (level === "Info" ? Effect.logInfo : level === "Warning" ? Effect.logWarning : Effect.logError)(msg).pipe(
        Effect.annotateLogs({ type, group: options.groupId, ...fields })
      )
    for (const c of [m.restarts, m.rebalances, m.commitFailures, m.redeliveries, m.handlerDefects, m.skipped]) yield* Metric.incrementBy(c, 0)

    const dispatcher = yield* makeKeyedDispatcher(options.handle, (message, cause) =>
      log("Error", "message handler failed; handling it again", "CONSUMER_HANDLER_DEFECT", {
        source: `${message.topic}/${message.partition}/${message.offset}`,
        error: Cause.pretty(cause).slice(0, 1000)
      }).pipe(Effect.zipRight(Metric.increment(m.handlerDefects))), options.skip, options.maxConcurrent)

    let state: ConsumerState = "starting"
    let assigned = 0
    let restarts = 0
    let lastError: string | null = null
    let current: Consumer | undefined
    let stopping = false
    const committed = new Map<string, bigint>()
    const paused = new Set<string>()
    const setState = (s: ConsumerState) => Effect.sync(() => state = s).pipe(Effect.zipRight(Metric.set(m.up, s === "consuming" ? 1 : 0)))

    /** Commit every partition whose finished prefix moved. A failure is logged and retried at the next tick. */
    const commit = Effect.suspend(() => {
      const consumer = current
      if (consumer === undefined) return Effect.void
      const due = dispatcher.committable().filter((c) => (committed.get(tpKey(c.topic, c.partition)) ?? -1n) < c.offset)
      if (due.length === 0) return Effect.void
      return Effect.tryPromise(() =>
        consumer.commitOffsets(due.map((c) => ({ topic: c.topic, partition: c.partition, offset: c.offset.toString() })))
      ).pipe(
        Effect.tap(() => Effect.sync(() => due.forEach((c) => committed.set(tpKey(c.topic, c.partition), c.offset)))),
        Effect.catchAll((e) =>
          log("Warning", "offset commit failed; retried at the next tick", "COMMIT_FAILED", {
            partitions: due.map((c) => `${c.topic}/${c.partition}@${c.offset}`).join(","),
            error: e.error instanceof Error ? e.error.message : String(e.error)
          }).pipe(Effect.zipRight(Metric.increment(m.commitFailures))))
      )
    })

    /** Pause partitions holding too much unfinished work; resume those below half. */
    const balance = Effect.sync(() => {
      const consumer = current
      if (consumer === undefined) return
      for (const k of [...paused]) {
        const [topic, partition] = k.split("\u0000")
        if (dispatcher.inFlight(topic!, Number(partition)) <= options.maxInFlightPerPartition / 2) {
          paused.delete(k)
          consumer.resume([{ topic: topic!, partitions: [Number(partition)] }])
        }
      }
    })

    const tick = Effect.all([commit, balance, Metric.set(m.inFlight, dispatcher.totalInFlight())], { discard: true })
    yield* Effect.forkScoped(Effect.repeat(tick, Schedule.spaced(Duration.millis(options.commitIntervalMs))))

    /**
     * Take what a fetch returned: plain code, no fiber per fetch (a fiber and `Effect.provide` of the runtime per
     * batch were ~1 fiber per order end to end, issue 24). What it has to log comes back as an effect.
     */
    const take = (payload: EachBatchPayload): Effect.Effect<void> | undefined => {
      const { batch } = payload
      const { partition, topic } = batch
      let redelivered = 0
      const skippedBefore = dispatcher.skipped()
      let lastTaken: string | undefined
      for (const message of batch.messages) {
        if (stopping) break
        if (dispatcher.inFlight(topic, partition) >= options.maxInFlightPerPartition) {
          paused.add(tpKey(topic, partition))
          payload.pause()
          break
        }
        const taken = dispatcher.offer({
          topic,
          partition,
          offset: message.offset,
          key: message.key ?? null,
          value: message.value ?? null,
          headers: fromKafkaHeaders(message.headers)
        })
        if (!taken) redelivered++
        lastTaken = message.offset
      }
      // the fetch position moves past what was taken; what was not is fetched again after a resume
      if (lastTaken !== undefined) payload.resolveOffset(lastTaken)
      const skipped = dispatcher.skipped() - skippedBefore
      if (skipped > 0) m.skipped.unsafeUpdate(skipped, [])
      if (redelivered === 0) return undefined
      return log("Info", "messages fetched again that this consumer holds or finished", "REDELIVERY", {
        topic,
        partition,
        count: redelivered
      }).pipe(Effect.zipRight(Metric.incrementBy(m.redeliveries, redelivered)))
    }

    const runOnce: Effect.Effect<never, string, Scope.Scope> = Effect.gen(function*() {
      const runtime = yield* Effect.runtime<never>()
      const stopped = yield* Deferred.make<never, string>()
      const consumer = yield* kafka.consumer(options.groupId, options.topics).pipe(Effect.mapError((e) => e.message))
      const fork = <A>(effect: Effect.Effect<A>) => void Runtime.runFork(runtime)(effect)
      const runPromise = Runtime.runPromise(runtime)
      // a defect here is a bug of ours: crash (non-retriable) so the supervisor logs it and restarts, rather
      // than kafkajs retrying the batch silently
      const crashed = (e: unknown) => {
        throw Object.assign(new Error(`taking a batch failed: ${e instanceof Error ? e.message : String(e)}`), {
          retriable: false
        })
      }
      const eachBatch = (payload: EachBatchPayload): Promise<void> => {
        if (options.beforeBatch !== undefined) {
          return runPromise(Effect.flatMap(options.beforeBatch, () => take(payload) ?? Effect.void)).catch(crashed)
        }
        try {
          const report = take(payload)
          return report === undefined ? Promise.resolve() : runPromise(report).catch(crashed)
        } catch (e) {
          return Promise.reject(e).catch(crashed)
        }
      }
      consumer.on(consumer.events.CRASH, ({ payload }) =>
        fork(Deferred.fail(stopped, `crash: ${payload.error?.message ?? String(payload.error)}`)))
      consumer.on(consumer.events.STOP, () => {
        if (!stopping) fork(Deferred.fail(stopped, "the consumer stopped"))
      })
      consumer.on(consumer.events.REBALANCING, () =>
        fork(Effect.all([
          log("Info", "group rebalancing: committing what is finished", "REBALANCE", { phase: "started" }),
          Metric.increment(m.rebalances),
          commit
        ], { discard: true })))
      consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
        const mine = new Set<string>()
        for (const [topic, parts] of Object.entries(payload.memberAssignment)) {
          for (const p of parts) mine.add(tpKey(topic, p))
        }
        const dropped = dispatcher.retain(mine)
        for (const d of dropped) {
          committed.delete(tpKey(d.topic, d.partition))
          paused.delete(tpKey(d.topic, d.partition))
        }
        assigned = mine.size
        fork(Effect.all([
          log("Info", "joined the group", "REBALANCE", {
            phase: "joined",
            partitions: [...mine].map((k) => k.replace("\u0000", "/")).join(","),
            revoked: dropped.map((d) => `${d.topic}/${d.partition}(${d.inFlight} in flight)`).join(",")
          }),
          Metric.set(m.assigned, mine.size),
          setState("consuming")
        ], { discard: true }))
      })
      current = consumer
      yield* Effect.tryPromise({
        try: () =>
          consumer.run({
            autoCommit: false,
            eachBatchAutoResolve: false,
            partitionsConsumedConcurrently: 64,
            eachBatch
          }),
        catch: (e) => `run: ${e instanceof Error ? e.message : String(e)}`
      })
      return yield* Deferred.await(stopped)
    }).pipe(Effect.ensuring(Effect.sync(() => current = undefined)))

    const supervised = Effect.scoped(runOnce).pipe(
      Effect.tapError((error) =>
        Effect.suspend(() => {
          restarts++
          lastError = error
          assigned = 0
          return Effect.all([
            setState("restarting"),
            Metric.set(m.assigned, 0),
            Metric.increment(m.restarts),
            log("Error", "consumer crashed; restarting it", "CONSUMER_CRASH", { error, restarts })
          ], { discard: true })
        })),
      Effect.retry(Schedule.exponential(Duration.millis(500)).pipe(Schedule.union(Schedule.spaced(Duration.seconds(30))), Schedule.jittered))
    )
    yield* Effect.forkScoped(supervised)
    yield* log("Info", "consumer started", "STARTUP", { topics: options.topics.join(",") })

    // shutdown, in this order: stop fetching (pause: the member stays in the group, so it can still commit),
    // let in-flight work finish until the grace ends, interrupt the rest (it is redelivered: none of it was
    // committed), commit what finished, then leave the group and log
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        stopping = true
        const consumer = current
        if (consumer !== undefined) consumer.pause(options.topics.map((topic) => ({ topic })))
        const idle = yield* within(options.shutdown.graceMs, dispatcher.awaitIdle)
        const abandoned = dispatcher.totalInFlight()
        if (Exit.isFailure(idle)) yield* dispatcher.interruptAll
        yield* shutdownStep("final commit", options.shutdown.commitMs, commit)
        if (consumer !== undefined) yield* shutdownStep("leave the group", options.shutdown.leaveMs, Effect.promise(() => consumer.stop()))
        yield* setState("stopped")
        yield* log("Info", "consumer stopped", "SHUTDOWN", { abandoned })
      })
    )

    return Effect.sync((): ConsumerStatus => ({
      state,
      assignedPartitions: assigned,
      inFlight: dispatcher.totalInFlight(),
      restarts,
      lastError
    }))
  })
