/**
 * The heart of the keyed consumer (src/kafka/KeyedConsumer.ts), with no Kafka in it so properties can drive
 * it (property-tests/p4-p5-p10-payments.test.ts, p12-offsets.test.ts): messages of one key run in order,
 * different keys concurrently, across batches and fetches; per partition an OffsetTracker says what may be
 * committed — the end of the contiguous prefix of finished messages, never past an unfinished one.
 */
import { Cause, Duration, Effect, FiberSet } from "effect"
import type { IncomingMessage } from "./Kafka.js"
import { makePermits } from "../Permits.js"
import { OffsetTracker } from "./OffsetTracker.js"

interface Entry {
  readonly message: IncomingMessage
  readonly tracker: OffsetTracker
}

export const tpKey = (topic: string, partition: number) => `${topic}\u0000${partition}`

/** The message key as a map key: the same bytes, the same queue; a message without key is its own queue. */
const queueKey = (m: IncomingMessage) =>
  m.key === null ? `\u0001${m.topic}/${m.partition}/${m.offset}` : Buffer.from(m.key).toString("latin1")

/**
 * Per-key serial, cross-key concurrent execution with per-partition offset tracking; no Kafka in it, so
 * properties can drive it (`offer` what a fetch returned, `committable` what may be committed). A message
 * `skip` picks (from its headers: one the consumer has nothing to do with) is finished where it stands,
 * without a queue, a fiber or a handler call.
 */
export const makeKeyedDispatcher = (
  handle: (message: IncomingMessage) => Effect.Effect<void>,
  onDefect: (m: IncomingMessage, cause: Cause.Cause<never>) => Effect.Effect<void> = () => Effect.void,
  skip?: (message: IncomingMessage) => boolean,
  /** Handlers running at once across all keys (the rest wait their turn, fairly); unbounded when absent. */
  maxConcurrent?: number
) =>
  Effect.gen(function*() {
    const fibers = yield* FiberSet.make<void, never>()
    const run = yield* FiberSet.runtime(fibers)<never>()
    const partitions = new Map<string, OffsetTracker>()
    const queues = new Map<string, Array<Entry>>()
    let skipped = 0

    const handleOnce = (message: IncomingMessage): Effect.Effect<void> =>
      handle(message).pipe(
        Effect.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause)
            ? Effect.failCause(cause)
            : onDefect(message, cause).pipe(Effect.zipRight(Effect.sleep(Duration.seconds(1))), Effect.zipRight(Effect.suspend(() => handleOnce(message))))
        )
      )

    // What was fetched is not what the downstream can take: a fetch of hundreds of messages would otherwise
    // become as many fibers at once, competing with everything else on the event loop (HTTP, the relay).
    const slots = maxConcurrent === undefined ? undefined : makePermits(maxConcurrent)
    const bounded = (message: IncomingMessage) => slots === undefined ? handleOnce(message) : slots.withPermit(handleOnce(message))

    const drain = (key: string): Effect.Effect<void> =>
      Effect.gen(function*() {
        const queue = queues.get(key)!
        while (queue.length > 0) {
          const { message, tracker } = queue[0]!
          // a partition revoked meanwhile: its messages are someone else's now
          if (partitions.get(tpKey(message.topic, message.partition)) === tracker) {
            yield* bounded(message)
            tracker.finish(BigInt(message.offset))
          }
          queue.shift()
        }
        queues.delete(key)
      }).pipe(Effect.onInterrupt(() => Effect.sync(() => queues.delete(key))))

    const trackerOf = (topic: string, partition: number) => {
      const k = tpKey(topic, partition)
      let tracker = partitions.get(k)
      if (tracker === undefined) {
        tracker = new OffsetTracker()
        partitions.set(k, tracker)
      }
      return tracker
    }

    return {
      /** Take a message; false when it is held or finished here already (a redelivery). */
      offer: (message: IncomingMessage): boolean => {
        const tracker = trackerOf(message.topic, message.partition)
        const offset = BigInt(message.offset)
        if (!tracker.add(offset)) return false
        if (skip !== undefined && skip(message)) {
          tracker.finish(offset)
          skipped++
          return true
        }
        const key = queueKey(message)
        const queue = queues.get(key)
        if (queue !== undefined) queue.push({ message, tracker })
        else {
          queues.set(key, [{ message, tracker }])
          run(drain(key))
        }
        return true
      },
      /** Messages finished by `skip` so far. */
      skipped: () => skipped,
      inFlight: (topic: string, partition: number) => partitions.get(tpKey(topic, partition))?.inFlight ?? 0,
      totalInFlight: () => [...partitions.values()].reduce((n, t) => n + t.inFlight, 0),
      /** Partitions held, with the offset each may commit. */
      committable: () =>
        [...partitions.entries()].flatMap(([k, tracker]) => {
          const offset = tracker.committable()
          const [topic, partition] = k.split("\u0000")
          return offset === undefined ? [] : [{ topic: topic!, partition: Number(partition), offset, tracker }]
        }),
      /** Keep only these partitions (after a rebalance); what others held is dropped. */
      retain: (assigned: ReadonlySet<string>) => {
        const dropped: Array<{ topic: string; partition: number; inFlight: number }> = []
        for (const [k, tracker] of partitions) {
          if (assigned.has(k)) continue
          partitions.delete(k)
          const [topic, partition] = k.split("\u0000")
          dropped.push({ topic: topic!, partition: Number(partition), inFlight: tracker.inFlight })
        }
        return dropped
      },
      awaitIdle: FiberSet.awaitEmpty(fibers),
      interruptAll: FiberSet.clear(fibers)
    } as const
  })

export type KeyedDispatcher = Effect.Effect.Success<ReturnType<typeof makeKeyedDispatcher>>


