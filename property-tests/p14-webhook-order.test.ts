/**
 * P14 — webhook order (issue 20, docs/ARCHITECTURE.md "Notifier"): for random interleavings of event arrival
 * (the notifier writing an order's next version's deliveries), dispatch passes, attempts answered 2xx or failed
 * (a status or a timeout), notifier crashes (whatever was in flight is never answered; leases expire) and stalls
 * (calls outliving their leases, taken over, and answering late: an outcome only counts from the lease's holder), on the
 * real PostgreSQL tables through the dispatcher's own queue: per (endpoint, order) a version is delivered only
 * once every lower version is delivered or given up — so the first deliveries of each (endpoint, order) come in
 * increasing version order, none skipped unless given up — and once everything is answered every delivery is
 * delivered or failed (nothing stuck). Deliveries start three ways, all drawn: claimed by a pass, leased as they
 * are written (when nothing lower is pending and the endpoint has room), and handed on by a 2xx to the next version.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Logger, LogLevel, ManagedRuntime } from "effect"
import { randomUUID } from "node:crypto"
import { type Claimed, makeDeliveryQueue, type Slots } from "../src/webhooks/Dispatcher.js"
import { type EventToNotify, writeDeliveries } from "../src/webhooks/Notifier.js"
import { onTestDatabase } from "../test/support/TestDatabase.js"
import { fc, params } from "./support.js"

type Step =
  | { readonly kind: "arrive"; readonly order: number; readonly lease: boolean; readonly two: boolean }
  | { readonly kind: "pass"; readonly limit: number }
  | { readonly kind: "answer"; readonly pick: number; readonly ok: boolean }
  | { readonly kind: "crash" }
  | { readonly kind: "stall" }

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("arrive" as const), order: fc.nat({ max: 1 }), lease: fc.boolean(), two: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("pass" as const), limit: fc.integer({ min: 1, max: 6 }) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("answer" as const), pick: fc.nat(), ok: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ kind: "crash" as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: "stall" as const }) }
)

const MAX_VERSION = 4
const settings = { perEndpoint: 2, leaseMs: 60_000, schedule: [0, 0], disableAfterMs: 365 * 86_400_000 }

describe("P14 webhook order", () => {
  const runtime = ManagedRuntime.make(onTestDatabase("p14_webhooks", Layer.empty).pipe(
    Layer.provide(Logger.minimumLogLevel(LogLevel.None))
  ))

  it("per (endpoint, order): delivered in version order, none skipped unless given up, nothing stuck", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 2 }), fc.array(stepArb, { minLength: 5, maxLength: 60 }), (endpointCount, steps) =>
        runtime.runPromise(Effect.scoped(Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          let inFlight: Array<Claimed> = []
          const busy = () => {
            const m = new Map<string, number>()
            for (const d of inFlight) m.set(d.endpoint_id, (m.get(d.endpoint_id) ?? 0) + 1)
            return m
          }
          // what the queue leases on its own (a 2xx handing on to the next version) joins what is in flight
          const slots: Slots = {
            lease: (statement) =>
              Effect.map(statement({ perEndpoint: settings.perEndpoint, leaseMs: settings.leaseMs, busy: busy(), room: 4 }), ([a, leased]) => {
                inFlight.push(...leased)
                return a
              })
          }
          const queue = yield* makeDeliveryQueue(settings, slots)
          const endpoints = Array.from({ length: endpointCount }, () => randomUUID())
          for (const id of endpoints) {
            yield* sql`INSERT INTO webhook_endpoints (id, url, secret) VALUES (${id}, 'https://hooks.example.com/', 'whsec_AAAA')`
          }
          const orders = [randomUUID(), randomUUID(), randomUUID()]
          const versions = [0, 0, 0]
          // the first delivery of each (endpoint, order, version), in the order the 2xx came
          const firsts = new Map<string, Array<number>>()
          const seen = new Set<string>()
          const rows = sql<{ endpoint_id: string; order_id: string; version: number; status: string }>`
            SELECT endpoint_id, order_id, version, status FROM webhook_deliveries WHERE endpoint_id = ANY(${endpoints}::uuid[])`.pipe(Effect.orDie)

          const answer = (d: Claimed, ok: boolean) =>
            Effect.gen(function*() {
              if (ok) {
                // a 2xx may come only when every lower version of its (endpoint, order) is delivered or given up
                const lower = (yield* rows).filter((r) => r.endpoint_id === d.endpoint_id && r.order_id === d.order_id && r.version < d.version)
                const open = lower.filter((r) => r.status === "pending")
                if (open.length > 0) throw new Error(`version ${d.version} sent while ${open.map((r) => r.version)} pending`)
                const key = `${d.endpoint_id}/${d.order_id}/${d.version}`
                if (!seen.has(key)) {
                  seen.add(key)
                  const pair = `${d.endpoint_id}/${d.order_id}`
                  firsts.set(pair, [...(firsts.get(pair) ?? []), d.version])
                }
                yield* queue.delivered(d, 200)
              } else {
                yield* queue.failedAttempt(d, { status: 500, retryAfterMs: null, error: "HTTP 500" }, false)
              }
            }).pipe(Effect.orDie)

          for (const step of steps) {
            if (step.kind === "arrive") {
              const o = step.order
              // one event, or (`two`) the next two versions of the order in one statement
              const events: Array<EventToNotify> = []
              for (let n = 0; n < (step.two ? 2 : 1) && versions[o]! < MAX_VERSION; n++) {
                versions[o]! += 1
                events.push({
                  eventId: randomUUID(),
                  orderId: orders[o]!,
                  version: versions[o]!,
                  type: "order.placed",
                  body: "{}",
                  // after the endpoints' registration (an endpoint gets the events recorded after it)
                  recordedAt: new Date(Date.now() + 60_000),
                  traceparent: null,
                  tracestate: null
                })
              }
              if (events.length === 0) continue
              // written leased when it may go at once, or left for a pass
              if (step.lease) {
                yield* slots.lease((lease) => Effect.map(writeDeliveries(sql, "p14", events, lease), (rows) => [rows, rows.flatMap((r) => r.leased)] as const)).pipe(Effect.orDie)
              } else yield* writeDeliveries(sql, "p14", events).pipe(Effect.orDie)
            } else if (step.kind === "pass") {
              inFlight.push(...yield* queue.claim(step.limit, busy()).pipe(Effect.orDie))
            } else if (step.kind === "answer") {
              if (inFlight.length === 0) continue
              const [d] = inFlight.splice(step.pick % inFlight.length, 1)
              yield* answer(d!, step.ok)
            } else if (step.kind === "stall") {
              // calls that outlive their leases: another pass may take them over, and the old calls still answer
              yield* sql`UPDATE webhook_deliveries SET leased_until = now() - interval '1 second'
                         WHERE endpoint_id = ANY(${endpoints}::uuid[]) AND leased_until IS NOT NULL`.pipe(Effect.orDie)
            } else {
              // a crash: nothing in flight is ever answered; its leases run out
              inFlight = []
              yield* sql`UPDATE webhook_deliveries SET leased_until = now() - interval '1 second'
                         WHERE endpoint_id = ANY(${endpoints}::uuid[]) AND leased_until IS NOT NULL`.pipe(Effect.orDie)
            }
          }
          // then everything answered 2xx until nothing is due
          for (let round = 0; round < 100; round++) {
            for (const d of inFlight) yield* answer(d, true)
            inFlight = [...yield* queue.claim(10, new Map()).pipe(Effect.orDie)]
            if (inFlight.length === 0) break
          }
          const final = yield* rows
          const stuck = final.filter((r) => r.status === "pending")
          if (stuck.length > 0) throw new Error(`stuck pending: ${JSON.stringify(stuck)}`)
          for (const [pair, delivered] of firsts) {
            for (let i = 1; i < delivered.length; i++) {
              if (delivered[i]! <= delivered[i - 1]!) throw new Error(`${pair}: first deliveries ${delivered}`)
            }
            // none skipped unless given up: a version missing from the deliveries was failed
            const [endpoint, order] = pair.split("/")
            const skipped = final.filter((r) => r.endpoint_id === endpoint && r.order_id === order && !delivered.includes(r.version) && r.status !== "failed")
            if (skipped.length > 0) throw new Error(`${pair}: ${skipped.map((r) => r.version)} neither delivered nor failed`)
          }
        }))).then(() => true)),
      params("postgres")
    )
  }, 300_000)

  // the review's case (a fixed regression next to the property): a call outlives its lease on the last attempt,
  // another notifier takes the delivery over, and the old call's failure arrives first — it must not give the
  // delivery up (which would let version 2 go while version 1's second call is still on its way)
  it("an outcome from a call that outlived its lease is not recorded", async () => {
    await runtime.runPromise(Effect.scoped(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const queue = yield* makeDeliveryQueue(settings)
      const endpoint = randomUUID()
      const order = randomUUID()
      // the database is the file's: only this endpoint's deliveries are to be taken
      yield* sql`UPDATE webhook_endpoints SET status = 'disabled'`
      yield* sql`INSERT INTO webhook_endpoints (id, url, secret) VALUES (${endpoint}, 'https://hooks.example.com/', 'whsec_AAAA')`
      for (const version of [1, 2]) {
        yield* writeDeliveries(sql, "p14-stale", [{
          eventId: randomUUID(), orderId: order, version, type: "order.placed", body: "{}",
          recordedAt: new Date(Date.now() + 60_000), traceparent: null, tracestate: null
        }])
      }
      const mine = (rows: ReadonlyArray<Claimed>) => rows.filter((d) => d.endpoint_id === endpoint)
      const [first] = mine(yield* queue.claim(10, new Map()))
      yield* queue.failedAttempt(first!, { status: 500, retryAfterMs: null, error: "HTTP 500" }, false)
      const [stale] = mine(yield* queue.claim(10, new Map())) // the last attempt (schedule [0, 0])
      assert.strictEqual(stale!.version, 1)
      yield* sql`UPDATE webhook_deliveries SET leased_until = now() - interval '1 second' WHERE endpoint_id = ${endpoint}`
      const [current] = mine(yield* queue.claim(10, new Map()))
      assert.strictEqual(current!.version, 1)
      // the old call's failure: not recorded (not the lease's holder)
      assert.isFalse(yield* queue.failedAttempt(stale!, { status: null, retryAfterMs: null, error: "timeout" }, false))
      assert.deepStrictEqual(mine(yield* queue.claim(10, new Map())), [], "version 2 waits while version 1 is being called")
      assert.isTrue(yield* queue.delivered(current!, 200))
      assert.isFalse(yield* queue.delivered(stale!, 200), "a late 2xx of the old call is not recorded twice")
      const [next] = mine(yield* queue.claim(10, new Map()))
      assert.strictEqual(next!.version, 2)
    })).pipe(Effect.orDie))
    await runtime.dispose()
  })
})
