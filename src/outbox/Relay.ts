/**
 * The outbox relay (DESIGN §6): publishes committed outbox rows to Kafka, in position order, and marks them.
 *
 * One batch = one transaction holding `pg_try_advisory_xact_lock(RELAY_LOCK)`: two relays never publish at the
 * same time (the loser waits for its next wake), so a key's events leave in order (positions of one stream grow
 * with its versions: a later version's insert can only follow the commit of the earlier one). The batch is sent
 * with the idempotent producer and the rows are marked in the same transaction; a crash between send and mark
 * rolls the mark back and the rows go again: duplicates on the wire, absorbed by the consumers' inbox.
 * Woken by OutboxSignal on commit; `RELAY_POLL_MS` is the slow safety net.
 */
import { SqlClient } from "@effect/sql"
import { Cause, Config, Duration, Effect, Layer, Metric, Schedule } from "effect"
import { CrashPoints, isSimulatedCrash } from "../CrashPoints.js"
import { type EventRow, toRecordedEvent } from "../eventstore/PgEventStore.js"
import { toMessage } from "../kafka/Envelope.js"
import { Kafka } from "../kafka/Kafka.js"
import { OutboxSignal } from "./OutboxSignal.js"

/** Advisory lock key of relay leadership (any constant unique to this purpose). */
export const RELAY_LOCK = 7_318_001

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
    const sql = yield* SqlClient.SqlClient
    const kafka = yield* Kafka
    const crash = yield* CrashPoints
    const { batchSize } = yield* RelayConfig
    yield* Metric.incrementBy(eventsPublished, 0)

    /** Publish one batch; the number of rows published (0: nothing to do, or another relay holds the lock). */
    const publishBatch = sql.withTransaction(
      Effect.gen(function*() {
        const [lock] = yield* sql<{ ok: boolean }>`SELECT pg_try_advisory_xact_lock(${RELAY_LOCK}) AS ok`
        if (!lock?.ok) return 0
        const rows = yield* sql<EventRow>`
          SELECT e.position::text AS position, e.stream_id, e.version, e.type, e.schema_version, e.data,
                 e.metadata, e.recorded_at
          FROM outbox o JOIN events e ON e.position = o.position
          WHERE o.published_at IS NULL
          ORDER BY o.position
          LIMIT ${batchSize}`
        if (rows.length === 0) return 0
        const messages = rows.map((row) => toMessage(toRecordedEvent(row)))
        yield* crash.hit("relay.beforeSend")
        const half = Math.ceil(messages.length / 2)
        yield* kafka.send(kafka.topics.orderEvents, messages.slice(0, half))
        yield* crash.hit("relay.midBatch")
        if (half < messages.length) yield* kafka.send(kafka.topics.orderEvents, messages.slice(half))
        yield* crash.hit("relay.afterSendBeforeMark")
        yield* sql`UPDATE outbox SET published_at = now() WHERE position = ANY(${rows.map((r) => r.position)}::bigint[])`
        yield* Metric.incrementBy(eventsPublished, rows.length)
        return rows.length
      })
    ).pipe(Effect.catchTag("SqlError", Effect.die))

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
