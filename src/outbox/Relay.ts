/**
 * The outbox relay (DESIGN §6): publishes committed outbox rows to Kafka, in position order, and marks them.
 *
 * One batch at a time (Outbox.publishBatch: in PostgreSQL a transaction holding an advisory lock), so two
 * relays never publish at once and a key's events leave in order (positions of one stream grow with its
 * versions: a later version's insert can only follow the commit of the earlier one). The batch is sent with
 * the idempotent producer and the rows are marked only after; a crash between send and mark leaves them
 * unpublished and they go again: duplicates on the wire, absorbed by the consumers' inbox.
 * Woken by OutboxSignal on commit; `RELAY_POLL_MS` is the slow safety net.
 */
import { Cause, Config, Duration, Effect, Layer, Metric, Schedule } from "effect"
import { CrashPoints, isSimulatedCrash } from "../CrashPoints.js"
import { toMessage } from "../kafka/Envelope.js"
import { Kafka } from "../kafka/Kafka.js"
import { linksFromMetadata, traced } from "../observability/Tracing.js"
import { Outbox } from "./Outbox.js"
import { OutboxSignal } from "./OutboxSignal.js"

export const RelayConfig = Config.all({
  batchSize: Config.integer("RELAY_BATCH_SIZE").pipe(Config.withDefault(500)),
  pollMs: Config.integer("RELAY_POLL_MS").pipe(Config.withDefault(1000))
})

export const eventsPublished = Metric.counter("relay_events_published_total", {
  description: "order events published to Kafka by the relay",
  incremental: true
})

export class Relay extends Effect.Service<Relay>()("Relay", {
  effect: Effect.gen(function*() {
    const outbox = yield* Outbox
    const kafka = yield* Kafka
    const crash = yield* CrashPoints
    const { batchSize } = yield* RelayConfig
    yield* Metric.incrementBy(eventsPublished, 0)

    /** Publish one batch; the number of rows published (0: nothing to do, or another relay holds the lock). */
    const publishBatch = outbox.publishBatch(batchSize, (events) =>
      Effect.gen(function*() {
        const messages = events.map(toMessage)
        yield* crash.hit("relay.beforeSend")
        const half = Math.ceil(messages.length / 2)
        yield* kafka.send(kafka.topics.orderEvents, messages.slice(0, half))
        yield* crash.hit("relay.midBatch")
        if (half < messages.length) yield* kafka.send(kafka.topics.orderEvents, messages.slice(half))
        yield* crash.hit("relay.afterSendBeforeMark")
      }).pipe(traced("Relay.publish", {
        kind: "producer",
        root: true,
        links: linksFromMetadata(events.map((e) => e.metadata)),
        attributes: { "messaging.destination.name": kafka.topics.orderEvents, "messaging.batch.message_count": events.length }
      }))).pipe(Effect.tap((n) => Metric.incrementBy(eventsPublished, n)))

    return { publishBatch } as const
  })
}) {}

/** The relay role: publish while there is work, then wait for a wake (or the poll); errors back off and retry. */
export const RelayLive = Layer.scopedDiscard(
  Effect.gen(function*() {
    const relay = yield* Relay
    const signal = yield* OutboxSignal
    const { batchSize, pollMs } = yield* RelayConfig
    const pass: Effect.Effect<void> = relay.publishBatch.pipe(
      Effect.flatMap((n) => (n >= batchSize ? pass : signal.await(Duration.millis(pollMs)))),
      // The relay keeps no state in memory: a failed pass (broker down, a simulated crash) is exactly a
      // restart. Its transaction rolled back, so the rows go again on the next pass.
      Effect.catchAllCause((cause) =>
        Effect.logWarning(isSimulatedCrash(Cause.squash(cause)) ? "relay crashed (simulated)" : "relay pass failed").pipe(
          Effect.annotateLogs({ type: "PROCESSING_ERROR", role: "relay", error: Cause.pretty(cause).slice(0, 500) }),
          Effect.zipRight(Effect.sleep(Duration.millis(200)))
        )
      )
    )
    yield* Effect.logInfo("relay started").pipe(Effect.annotateLogs({ type: "STARTUP", role: "relay" }))
    yield* Effect.forkScoped(Effect.repeat(pass, Schedule.forever))
  })
)
