/**
 * Idempotency-Key records with Stripe's semantics. A request with a key first `claim`s it:
 * - new key → Claimed: the request runs; its append completes the record in the same transaction
 *   (or `complete` stores a response no append wrote, e.g. a rejection);
 * - same key, same request, finished → Replay of the stored response; still running → InFlight (409);
 * - same key, another request → Mismatch (422).
 * A claim left in flight by a crashed process is taken over once its lease has expired; a request that
 * failed with a defect `release`s its claim so the client can retry.
 */
import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import { MemoryDatabase } from "../eventstore/MemoryDatabase.js"

export type Claim =
  | { readonly _tag: "Claimed" }
  | { readonly _tag: "Replay"; readonly status: number; readonly body: unknown }
  | { readonly _tag: "InFlight" }
  | { readonly _tag: "Mismatch" }

export interface StoredResponse {
  readonly status: number
  readonly body: unknown
}

export class IdempotencyKeys extends Context.Tag("IdempotencyKeys")<IdempotencyKeys, {
  readonly claim: (key: string, fingerprint: string, leaseMs: number) => Effect.Effect<Claim>
  readonly complete: (key: string, response: StoredResponse) => Effect.Effect<void>
  readonly release: (key: string) => Effect.Effect<void>
}>() {}

const claimed: Claim = { _tag: "Claimed" }
const inFlight: Claim = { _tag: "InFlight" }
const mismatch: Claim = { _tag: "Mismatch" }

export const PgIdempotencyKeys = Layer.effect(
  IdempotencyKeys,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return IdempotencyKeys.of({
      claim: (key, fingerprint, leaseMs) =>
        Effect.gen(function*() {
          const won = yield* sql`
            INSERT INTO idempotency_keys (key, fingerprint, status) VALUES (${key}, ${fingerprint}, 'in_flight')
            ON CONFLICT (key) DO UPDATE SET locked_at = now()
             WHERE idempotency_keys.status = 'in_flight' AND idempotency_keys.fingerprint = EXCLUDED.fingerprint
               AND idempotency_keys.locked_at < now() - ${leaseMs} * interval '1 millisecond'
            RETURNING key`
          if (won.length > 0) return claimed
          const [row] = yield* sql<{ fingerprint: string; status: string; response_status: number; response_body: unknown }>`
            SELECT fingerprint, status, response_status, response_body FROM idempotency_keys WHERE key = ${key}`
          if (row === undefined) return inFlight // released meanwhile: the client may retry
          if (row.fingerprint !== fingerprint) return mismatch
          if (row.status !== "completed") return inFlight
          return { _tag: "Replay", status: row.response_status, body: row.response_body } as const
        }).pipe(Effect.orDie),
      complete: (key, response) =>
        sql`UPDATE idempotency_keys SET status = 'completed', response_status = ${response.status},
                   response_body = ${JSON.stringify(response.body)}::jsonb
             WHERE key = ${key}`.pipe(Effect.asVoid, Effect.orDie),
      release: (key) =>
        sql`DELETE FROM idempotency_keys WHERE key = ${key} AND status = 'in_flight'`.pipe(Effect.asVoid, Effect.orDie)
    })
  })
)

export const MemoryIdempotencyKeys = Layer.effect(
  IdempotencyKeys,
  Effect.map(MemoryDatabase, (db) =>
    IdempotencyKeys.of({
      claim: (key, fingerprint, leaseMs) =>
        Effect.sync((): Claim => {
          const now = Date.now()
          const record = db.idempotency.get(key)
          if (record === undefined) {
            db.idempotency.set(key, { key, fingerprint, status: "in_flight", response: null, lockedAt: now })
            return claimed
          }
          if (record.fingerprint !== fingerprint) return mismatch
          if (record.status === "completed" && record.response) return { _tag: "Replay", ...record.response }
          if (record.lockedAt < now - leaseMs) {
            record.lockedAt = now
            return claimed
          }
          return inFlight
        }),
      complete: (key, response) =>
        Effect.sync(() => {
          const record = db.idempotency.get(key)
          if (record) {
            record.status = "completed"
            record.response = response
          }
        }),
      release: (key) =>
        Effect.sync(() => {
          if (db.idempotency.get(key)?.status === "in_flight") db.idempotency.delete(key)
        })
    }))
)
