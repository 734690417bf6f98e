/**
 * In-memory EventStore over a MemoryDatabase: the same contract as PgEventStore (test/eventstore.test.ts).
 * An append stores its events in the event store's own table, then runs every registered inline projection's
 * in-memory twin, in one synchronous step.
 */
import { Effect, Layer } from "effect"
import { MemoryDatabase, memoryTable } from "../database/MemoryDatabase.js"
import { schemaVersions } from "./EventCodec.js"
import { type AppendResult, ConcurrencyConflict, EventStore, type RecordedEvent } from "./EventStore.js"
import { InlineProjections } from "./InlineProjection.js"

/** The log: every event in position order, each stream's events, the stored event ids. */
const MemoryEvents = memoryTable("events", () => ({
  events: new Array<RecordedEvent>(),
  streams: new Map<string, Array<RecordedEvent>>(),
  eventIds: new Set<string>()
}))

export const MemoryEventStore = Layer.effect(
  EventStore,
  Effect.gen(function*() {
    const db = yield* MemoryDatabase
    const log = db.table(MemoryEvents)
    const registered = yield* InlineProjections
    const projections = registered.map((p) => p.memory(db))
    const guards = registered.flatMap((p) => (p.admits ? [p.admits(db)] : []))
    return EventStore.of({
      append: (request) =>
        Effect.suspend((): Effect.Effect<AppendResult, ConcurrencyConflict> => {
          const stream = log.streams.get(request.streamId) ?? []
          const stored = request.events.filter((e) => log.eventIds.has(e.eventId)).length
          if (stored > 0 && stored === request.events.length) {
            return Effect.succeed({ version: stream.length, duplicate: true })
          }
          if (stream.length !== request.expectedVersion || stored > 0 || !guards.every((admits) => admits(request))) {
            return Effect.fail(
              new ConcurrencyConflict({
                streamId: request.streamId,
                expectedVersion: request.expectedVersion,
                actualVersion: stream.length
              })
            )
          }
          const recordedAt = new Date()
          const recorded = request.events.map((event, k): RecordedEvent => ({
            position: BigInt(log.events.length + k + 1),
            streamId: request.streamId,
            version: stream.length + k + 1,
            schemaVersion: schemaVersions[event._tag],
            event,
            metadata: request.metadata,
            recordedAt
          }))
          stream.push(...recorded)
          log.events.push(...recorded)
          for (const event of request.events) log.eventIds.add(event.eventId)
          log.streams.set(request.streamId, stream)
          for (const project of projections) project(request, recorded)
          return Effect.succeed({ version: stream.length, duplicate: false })
        }),
      readStream: (streamId) => Effect.sync(() => [...(log.streams.get(streamId) ?? [])])
    })
  })
)
