/**
 * Read side of the event log for watchers of many streams: the events of each given stream after a given
 * version, all streams in ONE query (a watch hub refreshes every watched stream at once, never one query per
 * client). Over the in-memory store, stream by stream.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Option } from "effect"
import type { OrderId } from "../domain/Order.js"
import { EventStore, type RecordedEvent } from "./EventStore.js"
import { type EventRow, toRecordedEvent } from "./EventRows.js"
import { orStoreError, type StoreError } from "../Infrastructure.js"

export type StreamTail = readonly [streamId: OrderId, afterVersion: number]

/** `(streams) → events` in stream then version order, over PostgreSQL when a SqlClient is present. */
export const makeStreamTails = Effect.gen(function*() {
  const store = yield* EventStore
  const sql = yield* Effect.serviceOption(SqlClient.SqlClient)
  return (from: ReadonlyArray<StreamTail>): Effect.Effect<ReadonlyArray<RecordedEvent>, StoreError> =>
    Option.match(sql, {
      onNone: () =>
        Effect.map(
          Effect.forEach(from, ([id, v]) => Effect.map(store.readStream(id), (events) => events.filter((e) => e.version > v))),
          (lists) => lists.flat()
        ),
      onSome: (sql) =>
        sql<EventRow>`
          SELECT e.position::text AS position, e.stream_id, e.version, e.type, e.schema_version, e.data, e.metadata,
                 e.recorded_at
          FROM unnest(${from.map(([id]) => id)}::uuid[], ${from.map(([, v]) => v)}::int[]) AS w(id, v)
          JOIN events e ON e.stream_id = w.id AND e.version > w.v
          ORDER BY e.stream_id, e.version`.pipe(Effect.map((rows) => rows.map(toRecordedEvent)), orStoreError)
    })
})
