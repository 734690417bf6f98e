/**
 * The consumer inbox on both backends. In PostgreSQL, lookups made at the same time are answered by one query
 * (src/Batcher.ts): each caller must still get the answer for its own (consumer, message).
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect, type Layer } from "effect"
import { randomUUID } from "node:crypto"
import { MemoryStores, PgStores } from "../src/Stores.js"
import { Inbox } from "../src/inbox/Inbox.js"
import { onTestDatabase } from "./support/TestDatabase.js"

const suite = (name: string, stores: Layer.Layer<Inbox>) =>
  describe(`Inbox: ${name}`, () => {
    layer(stores, { excludeTestServices: true })((it) => {
      it.effect("concurrent lookups each answer for their own consumer and message", () =>
        Effect.gen(function*() {
          const inbox = yield* Inbox
          const ids = Array.from({ length: 60 }, () => randomUUID())
          const done = ids.filter((_, i) => i % 3 === 0)
          yield* Effect.forEach(done, (id) => inbox.markProcessed("worker-a", id), { discard: true })
          yield* inbox.markProcessed("worker-b", ids[1]!)
          const lookups = [
            ...ids.map((id) => ({ consumer: "worker-a", id })),
            { consumer: "worker-b", id: ids[1]! },
            { consumer: "worker-b", id: ids[0]! },
            { consumer: "worker-a", id: done[0]!.toUpperCase() }
          ]
          const answers = yield* Effect.forEach(lookups, (l) => inbox.isProcessed(l.consumer, l.id), { concurrency: "unbounded" })
          assert.deepStrictEqual(answers, [...ids.map((_, i) => i % 3 === 0), true, false, true])
        }))
    })
  })

suite("in-memory", MemoryStores)
suite("PostgreSQL", onTestDatabase("inbox", PgStores))
