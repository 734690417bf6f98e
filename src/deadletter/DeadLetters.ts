/**
 * Dead letters (DESIGN §8): messages a consumer gave up on, parked in a table (for operators: list, show,
 * replay, discard) and copied to the dead-letter topic. Replay republishes the original message to its topic:
 * the consumer's inbox makes sure it takes effect at most once.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Metric, Option, Schema } from "effect"
import { Kafka } from "../kafka/Kafka.js"

export const DeadLetter = Schema.Struct({
  id: Schema.String,
  consumer: Schema.String,
  topic: Schema.String,
  partition: Schema.Int,
  offset: Schema.String,
  key: Schema.NullOr(Schema.String),
  value: Schema.String,
  headers: Schema.Record({ key: Schema.String, value: Schema.String }),
  error: Schema.String,
  attempts: Schema.Int,
  status: Schema.Literal("parked", "replayed", "discarded"),
  createdAt: Schema.String,
  updatedAt: Schema.String
})
export type DeadLetter = typeof DeadLetter.Type

export interface Parked {
  readonly consumer: string
  readonly topic: string
  readonly partition: number
  readonly offset: string
  readonly key: string | null
  readonly value: string
  readonly headers: Record<string, string>
  readonly error: string
  readonly attempts: number
}

export const deadLettersParked = Metric.counter("dead_letters_parked_total", {
  description: "messages parked as dead letters",
  incremental: true
})

interface Row {
  id: string
  consumer: string
  topic: string
  partition: number
  offset: string
  message_key: string | null
  value: string
  headers: Record<string, string>
  error: string
  attempts: number
  status: DeadLetter["status"]
  created_at: Date
  updated_at: Date
}

const fromRow = (r: Row): DeadLetter => ({
  id: r.id,
  consumer: r.consumer,
  topic: r.topic,
  partition: r.partition,
  offset: r.offset,
  key: r.message_key,
  value: r.value,
  headers: r.headers,
  error: r.error,
  attempts: r.attempts,
  status: r.status,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString()
})

const columns = "id::text AS id, consumer, topic, partition, \"offset\", message_key, value, headers, error, attempts, " +
  "status, created_at, updated_at"

export class DeadLetters extends Effect.Service<DeadLetters>()("DeadLetters", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const kafka = yield* Kafka
    yield* Metric.incrementBy(deadLettersParked, 0)

    const get = (id: string) =>
      sql<Row>`SELECT ${sql.literal(columns)} FROM dead_letters WHERE id = ${id}::bigint`.pipe(
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), fromRow))
      )

    const setStatus = (id: string, from: DeadLetter["status"], to: DeadLetter["status"]) =>
      sql<Row>`UPDATE dead_letters SET status = ${to}, updated_at = now() WHERE id = ${id}::bigint AND status = ${from}
               RETURNING ${sql.literal(columns)}`.pipe(Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), fromRow)))

    return {
      park: (parked: Parked) =>
        Effect.gen(function*() {
          yield* sql`
            INSERT INTO dead_letters (consumer, topic, partition, "offset", message_key, value, headers, error, attempts)
            VALUES (${parked.consumer}, ${parked.topic}, ${parked.partition}, ${parked.offset}, ${parked.key},
                    ${parked.value}, ${JSON.stringify(parked.headers)}::jsonb, ${parked.error}, ${parked.attempts})
            ON CONFLICT (consumer, topic, partition, "offset") DO NOTHING`
          yield* kafka.send(kafka.topics.deadLetters, [{
            key: parked.key ?? "",
            value: parked.value,
            headers: {
              ...parked.headers,
              "dlq-error": parked.error.slice(0, 1000),
              "dlq-attempts": String(parked.attempts),
              "dlq-consumer": parked.consumer,
              "dlq-source": `${parked.topic}/${parked.partition}/${parked.offset}`
            }
          }])
          yield* Metric.increment(deadLettersParked)
          yield* Effect.logWarning("message parked as dead letter").pipe(
            Effect.annotateLogs({
              type: "DLQ_EVENT",
              consumer: parked.consumer,
              orderId: parked.key,
              eventId: parked.headers["event-id"] ?? null,
              attempts: parked.attempts,
              error: parked.error
            })
          )
        }).pipe(Effect.orDie),

      list: (status: DeadLetter["status"] | undefined, limit: number) =>
        sql<Row>`SELECT ${sql.literal(columns)} FROM dead_letters
                 WHERE ${status === undefined ? sql`true` : sql`status = ${status}`}
                 ORDER BY dead_letters.id LIMIT ${limit}`.pipe(Effect.map((rows) => rows.map(fromRow)), Effect.orDie),

      get: (id: string) => get(id).pipe(Effect.orDie),

      /** Republish a parked message to its topic; None when it is not parked (unknown, replayed or discarded). */
      replay: (id: string) =>
        sql.withTransaction(
          Effect.gen(function*() {
            const updated = yield* setStatus(id, "parked", "replayed")
            if (Option.isSome(updated)) {
              const d = updated.value
              yield* kafka.send(d.topic, [{ key: d.key ?? "", value: d.value, headers: d.headers }])
            }
            return updated
          })
        ).pipe(Effect.orDie),

      discard: (id: string) => setStatus(id, "parked", "discarded").pipe(Effect.orDie)
    } as const
  })
}) {}
