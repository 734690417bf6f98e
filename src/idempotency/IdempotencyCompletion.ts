/**
 * The Idempotency-Key record completed by the append its request made: registered with the event store as an
 * inline projection, so the response to replay is stored in the same transaction as the order it describes
 * (a crash can never leave an order without its record). The request hands it over as the participant of its
 * append (`completesKey`). Also the in-memory `idempotency_keys` table, which IdempotencyKeys.ts reads and writes.
 */
import { Context } from "effect"
import { memoryTable } from "../database/MemoryDatabase.js"
import type { Order } from "../domain/Order.js"
import type { AppendParticipants } from "../eventstore/EventStore.js"
import { inlineProjection } from "../eventstore/InlineProjection.js"

export interface StoredResponse {
  readonly status: number
  readonly body: unknown
}

/** The key an append completes, with the response to store for it. */
export class CompletesKey extends Context.Tag("CompletesKey")<
  CompletesKey,
  StoredResponse & { readonly key: string; readonly token: string }
>() {}

/**
 * The append's participant that completes `key` with the response `respond` makes of the resulting order — and
 * guards it: the append is written only while `key` is still claimed by this request (`token`, in flight).
 * A request whose claim was released (it failed, or gave up at its deadline) or taken over after its lease
 * can then never write an order for the key behind the client's back, whatever its statement's fate.
 */
export const completesKey = (key: string, token: string, respond: (order: Order) => StoredResponse): AppendParticipants => (order) =>
  Context.make(CompletesKey, { key, token, ...respond(order) }) as Context.Context<never>

export interface MemoryIdempotencyRecord {
  readonly key: string
  readonly fingerprint: string
  status: "in_flight" | "completed" | "released"
  response: StoredResponse | null
  lockedAt: number
  /** The claim's token (`release` needs it). */
  token: string
  readonly createdAt: number
  /** Every token released on the key: a claim of one of them arriving late takes nothing. */
  released: ReadonlySet<string>
}

/** The in-memory `idempotency_keys` table: key → record. */
export const MemoryIdempotencyRecords = memoryTable("idempotency_keys", () => new Map<string, MemoryIdempotencyRecord>())

export const IdempotencyCompletion = inlineProjection({
  name: "idempotency",
  pg: {
    input: {
      columns: { key: "text", token: "uuid", status: "smallint", body: "jsonb" },
      rows: (request) => {
        const completes = Context.getOption(request.inputs, CompletesKey)
        return completes._tag === "Some"
          ? [{
            key: completes.value.key,
            token: completes.value.token,
            status: completes.value.status,
            body: JSON.stringify(completes.value.body)
          }]
          : []
      }
    },
    guard: (sql) => sql`EXISTS (
      SELECT 1 FROM idempotency_keys k
      WHERE k.key = c.key AND k.claim_token = c.token AND k.status = 'in_flight' FOR SHARE)`,
    write: (sql, { input, written }) => sql`
      UPDATE idempotency_keys k SET status = 'completed', response_status = c.status, response_body = c.body
        FROM ${input} c WHERE k.key = c.key AND c.i IN (SELECT i FROM ${written})`
  },
  admits: (db) => {
    const records = db.table(MemoryIdempotencyRecords)
    return (request) => {
      const completes = Context.getOption(request.inputs, CompletesKey)
      if (completes._tag === "None") return true
      const record = records.get(completes.value.key)
      return record !== undefined && record.token === completes.value.token && record.status === "in_flight"
    }
  },
  memory: (db) => {
    const records = db.table(MemoryIdempotencyRecords)
    return (request) => {
      const completes = Context.getOption(request.inputs, CompletesKey)
      const record = completes._tag === "Some" ? records.get(completes.value.key) : undefined
      if (record === undefined || completes._tag === "None") return
      record.status = "completed"
      record.response = { status: completes.value.status, body: completes.value.body }
    }
  }
})
