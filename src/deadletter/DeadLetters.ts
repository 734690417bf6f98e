/**
 * Dead letters (docs/ARCHITECTURE.md "Payment worker"): messages a consumer gave up on, parked in a table (for
 * operators: list, show, replay, discard) and copied to the dead-letter topic. Replay republishes the original
 * message to its topic: the consumer's inbox makes sure it takes effect at most once.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Metric, Option } from "effect"
import { type IncomingMessage, Kafka } from "../kafka/Kafka.js"
import type { DeadLetter } from "./DeadLetter.js"
import { orStoreError } from "../Infrastructure.js"

export interface Parked {
  readonly consumer: string
  readonly message: IncomingMessage
  readonly error: string
  readonly attempts: number
}

export const deadLettersParked = Metric.counter("dead_letters_parked_total", {
  description: "messages parked as dead letters",
  incremental: true
})

const PREVIEW_CHARS = 2000

/** Text an operator can read and PostgreSQL `text`/`jsonb` can hold, whatever the bytes were. */
export const preview = (bytes: Uint8Array | string, limit = PREVIEW_CHARS): string => {
  const text = typeof bytes === "string" ? bytes : Buffer.from(bytes).toString("utf8") // invalid sequences → U+FFFD
  const cut = text.length > limit ? text.slice(0, limit) : text
  // eslint-disable-next-line no-control-regex
  const printable = cut.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
  return text.length > limit ? `${printable}… (${text.length} characters)` : printable
}

interface Row {
  id: string
  consumer: string
  topic: string
  partition: number
  offset: string
  message_key: string | null
  value: string
  headers: Record<string, string>
  value_bytes: Uint8Array | null
  key_bytes: Uint8Array | null
  header_bytes: Array<[string, string]>
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
  valueBase64: r.value_bytes === null ? null : Buffer.from(r.value_bytes).toString("base64"),
  valueBytes: r.value_bytes?.length ?? 0,
  error: r.error,
  attempts: r.attempts,
  status: r.status,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString()
})

/** The parked message exactly as it was (for replay). */
const originalOf = (r: Row) => ({
  key: r.key_bytes === null ? null : Buffer.from(r.key_bytes),
  value: r.value_bytes === null ? null : Buffer.from(r.value_bytes),
  headers: r.header_bytes.map(([k, v]) => [Buffer.from(k, "base64").toString("utf8"), Buffer.from(v, "base64")] as const)
})

const columns = "id::text AS id, consumer, topic, partition, \"offset\", message_key, value, headers, value_bytes, " +
  "key_bytes, header_bytes, error, attempts, status, created_at, updated_at"

/** Retention: delete up to `limit` dead letters discarded more than `hours` ago (parked and replayed ones stay:
 * they are the operator's record); how many. */
export const deleteDiscarded = (sql: SqlClient.SqlClient) => (hours: number, limit: number) =>
  Effect.map(
    sql`DELETE FROM dead_letters WHERE id IN (
          SELECT id FROM dead_letters
          WHERE status = 'discarded' AND updated_at < now() - ${hours} * interval '1 hour'
          ORDER BY updated_at LIMIT ${limit} FOR UPDATE SKIP LOCKED)
        RETURNING id`,
    (rows) => rows.length
  )

export class DeadLetters extends Effect.Service<DeadLetters>()("DeadLetters", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const kafka = yield* Kafka
    yield* Metric.incrementBy(deadLettersParked, 0)

    const get = (id: string) =>
      sql<Row>`SELECT ${sql.literal(columns)} FROM dead_letters WHERE id = ${id}::bigint`.pipe(
        Effect.map((rows) => Option.fromNullable(rows[0]))
      )

    const setStatus = (id: string, from: DeadLetter["status"], to: DeadLetter["status"]) =>
      sql<Row>`UPDATE dead_letters SET status = ${to}, updated_at = now() WHERE id = ${id}::bigint AND status = ${from}
               RETURNING ${sql.literal(columns)}`.pipe(Effect.map((rows) => Option.fromNullable(rows[0])))

    /** The copy on the dead-letter topic: the original bytes plus why and where from. A value the topic
     * refuses (too large) is copied without its value — the table keeps it either way. */
    const copyToTopic = (parked: Parked) => {
      const { message } = parked
      const headers: Array<readonly [string, string | Uint8Array]> = [
        ...message.headers,
        ["dlq-error", parked.error.slice(0, 1000)],
        ["dlq-attempts", String(parked.attempts)],
        ["dlq-consumer", parked.consumer],
        ["dlq-source", `${message.topic}/${message.partition}/${message.offset}`]
      ]
      const send = (value: Uint8Array | null, extra: ReadonlyArray<readonly [string, string]>) =>
        kafka.sendRaw(kafka.topics.deadLetters, [{ key: message.key, value, headers: [...headers, ...extra] }])
      return send(message.value, []).pipe(
        Effect.catchIf((e) => /too large|MESSAGE_TOO_LARGE|RecordTooLarge/i.test(e.message), () =>
          send(null, [["dlq-value-omitted", String(message.value?.length ?? 0)]]))
      )
    }

    return {
      /** Park a message. Never fails on content (any bytes are stored as they are); fails only when the
       * database or the broker is unreachable — the caller retries then, it must not skip the message. */
      park: (parked: Parked) =>
        Effect.gen(function*() {
          const { message } = parked
          const previewHeaders: Record<string, string> = {}
          for (const [k, v] of message.headers) previewHeaders[preview(k, 200)] = preview(v, 500)
          const headerBytes = message.headers.map(([k, v]) => [Buffer.from(k).toString("base64"), Buffer.from(v).toString("base64")])
          const inserted = yield* sql<{ id: string }>`
            INSERT INTO dead_letters (consumer, topic, partition, "offset", message_key, value, headers, error, attempts,
                                      value_bytes, key_bytes, header_bytes)
            VALUES (${parked.consumer}, ${message.topic}, ${message.partition}, ${message.offset},
                    ${message.key === null ? null : preview(message.key, 500)}, ${message.value === null ? "" : preview(message.value)},
                    ${JSON.stringify(previewHeaders)}::jsonb, ${preview(parked.error, 4000)}, ${parked.attempts},
                    ${message.value}, ${message.key}, ${JSON.stringify(headerBytes)}::jsonb)
            ON CONFLICT (consumer, topic, partition, "offset") DO NOTHING
            RETURNING id::text AS id`
          // parked before (a redelivery after a crash between parking and the offset commit): once is enough
          if (inserted.length === 0) return
          yield* copyToTopic(parked)
          yield* Metric.increment(deadLettersParked)
          yield* Effect.logWarning("message parked as dead letter").pipe(
            Effect.annotateLogs({
              type: "DLQ_EVENT",
              consumer: parked.consumer,
              deadLetterId: inserted[0]!.id,
              source: `${message.topic}/${message.partition}/${message.offset}`,
              orderId: message.key === null ? null : preview(message.key, 100),
              attempts: parked.attempts,
              error: parked.error.slice(0, 1000)
            })
          )
        }).pipe(orStoreError),

      list: (status: DeadLetter["status"] | undefined, limit: number) =>
        sql<Row>`SELECT ${sql.literal(columns)} FROM dead_letters
                 WHERE ${status === undefined ? sql`true` : sql`status = ${status}`}
                 ORDER BY dead_letters.id LIMIT ${limit}`.pipe(Effect.map((rows) => rows.map(fromRow)), orStoreError),

      get: (id: string) => get(id).pipe(Effect.map(Option.map(fromRow)), orStoreError),

      /** Republish a parked message, byte for byte, to its topic; None when it is not parked (unknown,
       * replayed or discarded). The consumer's inbox makes a replay count at most once. */
      replay: (id: string) =>
        sql.withTransaction(
          Effect.gen(function*() {
            const updated = yield* setStatus(id, "parked", "replayed")
            if (Option.isSome(updated)) {
              yield* kafka.sendRaw(updated.value.topic, [originalOf(updated.value)])
            }
            return Option.map(updated, fromRow)
          })
        ).pipe(orStoreError),

      discard: (id: string) => setStatus(id, "parked", "discarded").pipe(Effect.map(Option.map(fromRow)), orStoreError)
    } as const
  })
}) {}
