/**
 * Idempotency-Key records on both backends (issue 12 item 3): a claim is released by its own token only, and
 * never once completed; records past their time to live are gone (a new request). Their deletion is the
 * retention job's (test/retention.test.ts).
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { Context, Effect, Either, Layer } from "effect"
import { randomUUID } from "node:crypto"
import { MemoryStores, PgStores } from "../src/Stores.js"
import { IdempotencyKeys } from "../src/idempotency/IdempotencyKeys.js"
import { decide, fold } from "../src/domain/OrderDecider.js"
import { EventStore, OrderAfterAppend } from "../src/eventstore/EventStore.js"
import { CompletesKey } from "../src/idempotency/IdempotencyCompletion.js"
import { cmd, newOrderId } from "./support/fixtures.js"
import { onTestDatabase } from "./support/TestDatabase.js"

const day = 24 * 3600_000
const claimOf = (key: string, token = randomUUID(), fingerprint = "fp") => ({ key, fingerprint, token, leaseMs: 60_000, ttlMs: day })

/** Completes `key` as production does: in the append of the order its request placed. */
const completeInAppend = (key: string, token: string, body: unknown, orderId = newOrderId()) =>
  Effect.flatMap(EventStore, (store) => {
    const events = Either.getOrThrow(decide(cmd.place(orderId), undefined))
    const inputs = Context.make(OrderAfterAppend, fold(events)!).pipe(Context.add(CompletesKey, { key, token, status: 201, body }))
    return store.append({ streamId: orderId, expectedVersion: 0, events, metadata: {}, inputs: inputs as Context.Context<never> })
  })

const suite = (name: string, stores: Layer.Layer<IdempotencyKeys | EventStore>) =>
  describe(`IdempotencyKeys: ${name}`, () => {
    layer(stores, { excludeTestServices: true })((it) => {
      it.effect("release drops only the claim its token holds, and never a completed record", () =>
        Effect.gen(function*() {
          const keys = yield* IdempotencyKeys
          const key = `k-${randomUUID()}`
          const mine = claimOf(key)
          assert.strictEqual((yield* keys.claim(mine))._tag, "Claimed")
          yield* keys.release(key, randomUUID()) // someone else's token: nothing happens
          assert.strictEqual((yield* keys.claim(claimOf(key)))._tag, "InFlight")
          yield* keys.release(key, mine.token)
          const next = claimOf(key)
          assert.strictEqual((yield* keys.claim(next))._tag, "Claimed", "released: the retry proceeds at once")
          yield* completeInAppend(key, next.token, { ok: 1 })
          yield* keys.release(key, next.token)
          assert.deepStrictEqual(yield* keys.claim(claimOf(key)), { _tag: "Replay", status: 201, body: { ok: 1 } })
        }))

      it.effect("an append whose claim is gone (released, or taken over after its lease) writes nothing", () =>
        Effect.gen(function*() {
          const keys = yield* IdempotencyKeys
          const store = yield* EventStore
          const key = `k-${randomUUID()}`
          const first = claimOf(key)
          assert.strictEqual((yield* keys.claim(first))._tag, "Claimed")
          // the request failed (say its statement timed out on the client side) and released its claim ...
          yield* keys.release(key, first.token)
          // ... but its append still reaches the database: it must not write an order behind the client's back
          const late = newOrderId()
          const refused = yield* Effect.flip(completeInAppend(key, first.token, { late: true }, late))
          assert.strictEqual(refused._tag, "ConcurrencyConflict")
          assert.strictEqual((yield* store.readStream(late)).length, 0)
          // the retry claims the key anew and its append is written
          const retry = claimOf(key)
          assert.strictEqual((yield* keys.claim(retry))._tag, "Claimed")
          yield* completeInAppend(key, retry.token, { retry: true })
          // a stale token (a claim taken over) is refused too, and leaves the completed record alone
          const stale = newOrderId()
          yield* Effect.flip(completeInAppend(key, first.token, { stale: true }, stale))
          assert.strictEqual((yield* store.readStream(stale)).length, 0)
          assert.deepStrictEqual(yield* keys.claim(claimOf(key)), { _tag: "Replay", status: 201, body: { retry: true } })
        }))

      it.effect("a claim that reaches the database after its request released it holds nothing", () =>
        Effect.gen(function*() {
          // chaos seed 4 (pg-hang): the request's claim sat unread in a stopped backend; the request gave up at
          // its deadline and released its key through another connection once the database answered again;
          // the stopped backend then ran the claim — which left the key claimed for a whole lease (409s to
          // every retry, in_flight after quiescence)
          const keys = yield* IdempotencyKeys
          const key = `k-${randomUUID()}`
          const gaveUp = claimOf(key)
          yield* keys.release(key, gaveUp.token) // the release overtakes the claim
          yield* keys.claim(gaveUp) // the claim runs late; nobody is waiting for its answer
          const retry = claimOf(key)
          assert.strictEqual((yield* keys.claim(retry))._tag, "Claimed", "the retry takes the key at once")
          yield* keys.release(key, gaveUp.token) // the old request's release, once more: the retry's claim stays
          assert.strictEqual((yield* keys.claim(claimOf(key)))._tag, "InFlight")
          yield* completeInAppend(key, retry.token, { retry: true })
          assert.deepStrictEqual(yield* keys.claim(claimOf(key)), { _tag: "Replay", status: 201, body: { retry: true } })
          // a released key may be used again with another body (a request that failed is as if never made)
          const other = `k-${randomUUID()}`
          const first = claimOf(other, randomUUID(), "fp-1")
          assert.strictEqual((yield* keys.claim(first))._tag, "Claimed")
          yield* keys.release(other, first.token)
          assert.strictEqual((yield* keys.claim(claimOf(other, randomUUID(), "fp-2")))._tag, "Claimed")
        }))
    })
  })

suite("in-memory", MemoryStores)
suite("PostgreSQL", onTestDatabase("idempotency", PgStores))

describe("Idempotency-Key expiry on PostgreSQL", () => {
  layer(onTestDatabase("idempotency_expiry", PgStores), { excludeTestServices: true })((it) => {
    const backdate = (keys: ReadonlyArray<string>, ms: number) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql`UPDATE idempotency_keys SET created_at = now() - ${ms} * interval '1 millisecond' WHERE key IN ${sql.in(keys)}`)
    it.effect("a record past its time to live is gone: the same key is a new request, even with another body", () =>
      Effect.gen(function*() {
        const keys = yield* IdempotencyKeys
        const key = `k-${randomUUID()}`
        const claim = claimOf(key)
        yield* keys.claim(claim)
        yield* completeInAppend(key, claim.token, { first: true })
        assert.strictEqual((yield* keys.claim(claimOf(key, randomUUID(), "other")))._tag, "Mismatch")
        yield* backdate([key], day + 1000)
        assert.strictEqual((yield* keys.claim(claimOf(key, randomUUID(), "other")))._tag, "Claimed")
      }))
  })
})

