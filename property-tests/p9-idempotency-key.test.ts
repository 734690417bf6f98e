/**
 * P9 — Idempotency-Key over HTTP, on PostgreSQL: random request sequences with repeated keys and bodies
 * → Stripe's semantics: the first request of a key creates an order (201); the same key with the same body
 * answers that response again and creates nothing; the same key with another body is refused (422) and
 * creates nothing; requests without a key always create. Orders created = distinct keys + keyless requests.
 */
import { describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { randomUUID } from "node:crypto"
import { postJson, rowCounts, TestApp } from "../test/support/TestApp.js"
import { fc, params } from "./support.js"

const bodies = [
  { userId: "8f0e2d0a-3f5e-4a7b-9c1d-2e3f4a5b6c7d", amount: "10.00", currency: "EUR" },
  { userId: "8f0e2d0a-3f5e-4a7b-9c1d-2e3f4a5b6c7d", amount: "10.01", currency: "EUR" },
  { userId: "9f0e2d0a-3f5e-4a7b-9c1d-2e3f4a5b6c7d", amount: "5", currency: "JPY" }
]

const requestArb = fc.record({ key: fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }), body: fc.integer({ min: 0, max: 2 }) })

describe("P9 Idempotency-Key", () => {
  layer(TestApp("props_idempotency"), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("random sequences with repeated keys and bodies follow Stripe's semantics", () =>
      Effect.gen(function*() {
        const runtime = yield* Effect.runtime<any>()
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(fc.array(requestArb, { minLength: 1, maxLength: 10 }), async (requests) => {
              const program = Effect.gen(function*() {
                const run = randomUUID() // keys of this run only
                const first = new Map<number, { body: number; orderId: string }>()
                const before = yield* rowCounts
                let expectedOrders = 0
                for (const r of requests) {
                  const headers: Record<string, string> = r.key === undefined ? {} : { "idempotency-key": `${run}-${r.key}` }
                  const reply = yield* postJson("/orders", bodies[r.body], headers)
                  if (r.key === undefined) {
                    expectedOrders++
                    if (reply.status !== 201) return `keyless request got ${reply.status}`
                    continue
                  }
                  const known = first.get(r.key)
                  if (known === undefined) {
                    expectedOrders++
                    if (reply.status !== 201) return `first use of a key got ${reply.status}`
                    first.set(r.key, { body: r.body, orderId: reply.body.orderId })
                  } else if (known.body === r.body) {
                    if (reply.status !== 201 || reply.body.orderId !== known.orderId) {
                      return `replay got ${reply.status} ${reply.body.orderId} instead of ${known.orderId}`
                    }
                  } else if (reply.status !== 422) {
                    return `key reused with another body got ${reply.status}`
                  }
                }
                const after = yield* rowCounts
                if (after.orders - before.orders !== expectedOrders) {
                  return `${after.orders - before.orders} orders created, expected ${expectedOrders}`
                }
                return undefined
              })
              const problem = await Effect.runPromise(program.pipe(Effect.provide(runtime)))
              if (problem) throw new Error(problem)
            }),
            params("postgres")
          ))
      }), { timeout: 300_000 })
  })
})
