/** In-memory EventStore over MemoryDatabase: the same contract as PgEventStore (test/eventstore.test.ts). */
import { Effect, Layer } from "effect"
import { type AppendResult, ConcurrencyConflict, EventStore, type RecordedEvent } from "./EventStore.js"
import { schemaVersions } from "./EventCodec.js"
import { MemoryDatabase } from "./MemoryDatabase.js"

export const MemoryEventStore = Layer.effect(
  EventStore,
  Effect.map(MemoryDatabase, (db) =>
    EventStore.of({
      append: (request) =>
        Effect.suspend((): Effect.Effect<AppendResult, ConcurrencyConflict> => {
          const stream = db.streams.get(request.streamId) ?? []
          const stored = request.events.filter((e) => db.eventIds.has(e.eventId)).length
          if (stored > 0 && stored === request.events.length) {
            return Effect.succeed({ version: stream.length, duplicate: true })
          }
          if (stream.length !== request.expectedVersion || stored > 0) {
            return Effect.fail(
              new ConcurrencyConflict({
                streamId: request.streamId,
                expectedVersion: request.expectedVersion,
                actualVersion: stream.length
              })
            )
          }
          const recordedAt = new Date()
          for (const event of request.events) {
            const recorded: RecordedEvent = {
              position: BigInt(db.events.length + 1),
              streamId: request.streamId,
              version: stream.length + 1,
              schemaVersion: schemaVersions[event._tag],
              event,
              metadata: request.metadata,
              recordedAt
            }
            stream.push(recorded)
            db.events.push(recorded)
            db.eventIds.add(event.eventId)
            db.outbox.push({ position: recorded.position, streamId: request.streamId, publishedAt: null })
          }
          db.streams.set(request.streamId, stream)
          const current = db.orders.get(request.streamId)
          if (current === undefined || current.version < request.state.version) {
            db.orders.set(request.streamId, request.state)
          }
          const idem = request.idempotency && db.idempotency.get(request.idempotency.key)
          if (idem && request.idempotency) {
            idem.status = "completed"
            idem.response = { status: request.idempotency.status, body: request.idempotency.body }
          }
          if (request.inbox) db.inbox.add(`${request.inbox.consumer}/${request.inbox.messageId.toLowerCase()}`)
          return Effect.succeed({ version: stream.length, duplicate: false })
        }),
      readStream: (streamId) => Effect.sync(() => [...(db.streams.get(streamId) ?? [])])
    }))
)
