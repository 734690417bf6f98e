/**
 * Idempotency-Key records with Stripe's semantics. A request with a key first `claim`s it with a fresh token:
 * - new key (or one older than its time to live) → Claimed: the request runs; its append completes the
 *   record in the same transaction (src/idempotency/IdempotencyCompletion.ts);
 * - same key, same request, finished → Replay of the stored response; still running → InFlight (409);
 * - same key, another request → Mismatch (422).
 * A request that fails before its append committed `release`s its claim at once (invariant 11), by token, so
 * it can never release a claim another request took over; a completed record is never released (the append
 * that completed it committed). A release marks the record `released` and remembers the token: any other
 * request takes a released key at once, but a claim of that token which reaches the database only after its
 * release — it sat unread in a hung backend while its request gave up — takes nothing (chaos seed 4,
 * pg-hang). A claim left in flight by a crashed process is taken over once its lease has expired. Records older than the time to live (24 h by default) are removed in batches by the retention job
 * (src/retention/Retention.ts, with `deleteExpired`).
 */
import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import { MemoryDatabase } from "../database/MemoryDatabase.js"
import { MemoryIdempotencyRecords } from "./IdempotencyCompletion.js"
import { orStoreError, type StoreError } from "../Infrastructure.js"

export type Claim =
  | { readonly _tag: "Claimed" }
  | { readonly _tag: "Replay"; readonly status: number; readonly body: unknown }
  | { readonly _tag: "InFlight" }
  | { readonly _tag: "Mismatch" }

export interface ClaimRequest {
  readonly key: string
  readonly fingerprint: string
  /** Identifies this request's claim (a UUID): `release` needs it. */
  readonly token: string
  readonly leaseMs: number
  /** A record older than this is gone, as if never stored (Stripe: 24 h). */
  readonly ttlMs: number
}

export class IdempotencyKeys extends Context.Tag("IdempotencyKeys")<IdempotencyKeys, {
  readonly claim: (request: ClaimRequest) => Effect.Effect<Claim, StoreError>
  /** Drop the claim `token` holds on `key`, if it still holds it and the record is not completed. */
  readonly release: (key: string, token: string) => Effect.Effect<void, StoreError>
}>() {}

const claimed: Claim = { _tag: "Claimed" }
const inFlight: Claim = { _tag: "InFlight" }
const mismatch: Claim = { _tag: "Mismatch" }

export const PgIdempotencyKeys = Layer.effect(
  IdempotencyKeys,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return IdempotencyKeys.of({
      claim: ({ fingerprint, key, leaseMs, token, ttlMs }) =>
        Effect.gen(function*() {
          // taken: a new key; a released or expired record (a new request); our own abandoned claim after its
          // lease — never by a token already released on the key (its request has given up)
          const won = yield* sql`
            INSERT INTO idempotency_keys (key, fingerprint, status, claim_token) VALUES (${key}, ${fingerprint}, 'in_flight', ${token})
            ON CONFLICT (key) DO UPDATE SET
              locked_at = now(), claim_token = EXCLUDED.claim_token, fingerprint = EXCLUDED.fingerprint,
              status = 'in_flight', response_status = NULL, response_body = NULL,
              created_at = CASE WHEN idempotency_keys.created_at < now() - ${ttlMs} * interval '1 millisecond'
                                  OR idempotency_keys.status = 'released'
                                THEN now() ELSE idempotency_keys.created_at END
             WHERE NOT EXCLUDED.claim_token = ANY (idempotency_keys.released_tokens)
               AND (idempotency_keys.created_at < now() - ${ttlMs} * interval '1 millisecond'
                    OR idempotency_keys.status = 'released'
                    OR (idempotency_keys.status = 'in_flight' AND idempotency_keys.fingerprint = EXCLUDED.fingerprint
                        AND idempotency_keys.locked_at < now() - ${leaseMs} * interval '1 millisecond'))
            RETURNING key`
          if (won.length > 0) return claimed
          const [row] = yield* sql<{ fingerprint: string; status: string; response_status: number; response_body: unknown }>`
            SELECT fingerprint, status, response_status, response_body FROM idempotency_keys WHERE key = ${key}`
          if (row === undefined) return inFlight // expired and deleted meanwhile: the client may retry
          if (row.status === "released") return inFlight // released before this claim arrived: nobody is waiting
          if (row.fingerprint !== fingerprint) return mismatch
          if (row.status !== "completed") return inFlight
          return { _tag: "Replay", status: row.response_status, body: row.response_body } as const
        }).pipe(orStoreError),
      // recorded even when the claim is not (yet) there: it may still arrive
      release: (key, token) =>
        sql`
          INSERT INTO idempotency_keys (key, fingerprint, status, released_tokens) VALUES (${key}, '', 'released', ARRAY[${token}]::uuid[])
          ON CONFLICT (key) DO UPDATE SET
            status = CASE WHEN idempotency_keys.status = 'in_flight' AND idempotency_keys.claim_token = ${token}
                          THEN 'released' ELSE idempotency_keys.status END,
            released_tokens = idempotency_keys.released_tokens || ${token}::uuid
           WHERE idempotency_keys.status <> 'completed' AND NOT ${token}::uuid = ANY (idempotency_keys.released_tokens)`.pipe(
          Effect.asVoid,
          orStoreError
        )
    })
  })
)

export const MemoryIdempotencyKeys = Layer.effect(
  IdempotencyKeys,
  Effect.map(MemoryDatabase, (db) => {
    const records = db.table(MemoryIdempotencyRecords)
    const fresh = (key: string, fingerprint: string, token: string, now: number, released: ReadonlySet<string>) => {
      records.set(key, { key, fingerprint, status: "in_flight", response: null, lockedAt: now, token, createdAt: now, released })
      return claimed
    }
    const none: ReadonlySet<string> = new Set()
    return IdempotencyKeys.of({
      claim: ({ fingerprint, key, leaseMs, token, ttlMs }) =>
        Effect.sync((): Claim => {
          const now = Date.now()
          const record = records.get(key)
          if (record === undefined) return fresh(key, fingerprint, token, now, none)
          if (!record.released.has(token)) {
            if (record.createdAt < now - ttlMs || record.status === "released") return fresh(key, fingerprint, token, now, record.released)
            if (record.status === "in_flight" && record.fingerprint === fingerprint && record.lockedAt < now - leaseMs) {
              record.lockedAt = now
              record.token = token
              return claimed
            }
          }
          if (record.status === "released") return inFlight
          if (record.fingerprint !== fingerprint) return mismatch
          if (record.status === "completed" && record.response) return { _tag: "Replay", ...record.response }
          return inFlight
        }),
      release: (key, token) =>
        Effect.sync(() => {
          const record = records.get(key)
          if (record === undefined) {
            records.set(key, { key, fingerprint: "", status: "released", response: null, lockedAt: Date.now(), token: "", createdAt: Date.now(), released: new Set([token]) })
          } else if (record.status !== "completed" && !record.released.has(token)) {
            if (record.status === "in_flight" && record.token === token) record.status = "released"
            record.released = new Set([...record.released, token])
          }
        })
    })
  })
)

/** Retention: delete up to `limit` records older than `ttlMs` (any status: a record past its time to live is
 * already absent to `claim`); how many. */
export const deleteExpired = (sql: SqlClient.SqlClient) => (ttlMs: number, limit: number) =>
  Effect.map(
    sql`DELETE FROM idempotency_keys WHERE key IN (
          SELECT key FROM idempotency_keys WHERE created_at < now() - ${ttlMs} * interval '1 millisecond'
          ORDER BY created_at LIMIT ${limit} FOR UPDATE SKIP LOCKED)
        RETURNING 1`,
    (rows) => rows.length
  )
