/**
 * Clients that wait for an outcome (issue 12 item 5), over a real server and the real PostgreSQL:
 * `GET /orders/:id/watch` streams the order's events as server-sent events until it is terminal, resumes after
 * `Last-Event-ID`, is bounded per process; `GET /orders/:id?atVersion=N` is the order as of version N.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { request as httpRequest } from "node:http"
import { OrderActors } from "../src/actor/OrderActors.js"
import type { OrderId, PaymentId } from "../src/domain/Order.js"
import { cmd, newId } from "./support/fixtures.js"
import { baseUrl, call, postJson, TestApp } from "./support/TestApp.js"

const body = { userId: "8f0e2d0a-3f5e-4a7b-9c1d-2e3f4a5b6c7d", amount: "42.00", currency: "EUR" }

interface Watch {
  readonly status: number
  readonly contentType: string | undefined
  /** everything received until the server ended the stream */
  readonly text: Effect.Effect<string>
  /** resolves once the received text matches */
  readonly seen: (pattern: RegExp) => Effect.Effect<void>
  readonly close: Effect.Effect<void>
}

/** Open a watch stream; its status at once, its text when the server ends it. */
const watch = (orderId: string, headers: Record<string, string> = {}) =>
  Effect.flatMap(baseUrl, (base) =>
    Effect.async<Watch>((resume) => {
      const req = httpRequest(`${base}/orders/${orderId}/watch`, { headers, agent: false }, (res) => {
        let text = ""
        let ended = false
        const waiters: Array<() => void> = []
        const notify = () => waiters.splice(0).forEach((w) => w())
        res.setEncoding("utf8")
        res.on("data", (c: string) => {
          text += c
          notify()
        })
        const finish = () => {
          ended = true
          notify()
        }
        res.on("end", finish)
        res.on("close", finish)
        const until = (done: () => boolean) =>
          Effect.async<void>((k) => {
            const check = () => (done() ? k(Effect.void) : waiters.push(check))
            check()
          })
        resume(Effect.succeed({
          status: res.statusCode ?? 0,
          contentType: res.headers["content-type"],
          text: Effect.map(until(() => ended), () => text),
          seen: (pattern) => until(() => pattern.test(text) || ended),
          close: Effect.sync(() => req.destroy())
        }))
      })
      req.on("error", (e) => resume(Effect.die(e)))
      req.end()
    }))

const frames = (text: string) =>
  text.split("\n\n").filter((f) => f.startsWith("id:")).map((f) => {
    const field = (name: string) => f.split("\n").find((l) => l.startsWith(`${name}: `))!.slice(name.length + 2)
    return { id: Number(field("id")), event: field("event"), data: JSON.parse(field("data")) }
  })

const pay = (orderId: OrderId) =>
  Effect.gen(function*() {
    const actors = yield* OrderActors
    const p = newId<PaymentId>()
    yield* actors.execute(cmd.start(p, orderId))
    yield* actors.execute(cmd.succeed(p, orderId))
  }).pipe(Effect.orDie)

describe("watch and atVersion", () => {
  layer(TestApp("watch", { WATCH_MAX_CONNECTIONS: "3", WATCH_HEARTBEAT_MS: "300", WATCH_POLL_MS: "100" }), { excludeTestServices: true })((it) => {
    it.effect("a watcher sees CREATED → PAYMENT_PENDING → PAID, then the stream closes; it resumes from Last-Event-ID", () =>
      Effect.gen(function*() {
        const order = (yield* postJson("/orders", body)).body
        const w = yield* watch(order.orderId)
        assert.strictEqual(w.status, 200)
        assert.match(w.contentType ?? "", /^text\/event-stream/)
        yield* w.seen(/event: OrderPlaced/)
        yield* pay(order.orderId)
        const seen = frames(yield* w.text)
        assert.deepStrictEqual(seen.map((f) => [f.id, f.event, f.data.order.state]), [
          [1, "OrderPlaced", "CREATED"],
          [2, "PaymentRequested", "PAYMENT_PENDING"],
          [3, "OrderPaid", "PAID"]
        ])
        assert.strictEqual(seen[2]!.data.event.version, 3)

        const resumed = yield* watch(order.orderId, { "last-event-id": "2" })
        assert.deepStrictEqual(frames(yield* resumed.text).map((f) => [f.id, f.event]), [[3, "OrderPaid"]])
        const caughtUp = yield* watch(order.orderId, { "last-event-id": "3" })
        assert.deepStrictEqual(frames(yield* caughtUp.text), [])
      }))

    it.effect("unknown order → 404; a malformed Last-Event-ID → 400", () =>
      Effect.gen(function*() {
        assert.strictEqual((yield* call("GET", `/orders/${newId()}/watch`)).status, 404)
        const order = (yield* postJson("/orders", body)).body
        assert.strictEqual((yield* call("GET", `/orders/${order.orderId}/watch`, { headers: { "last-event-id": "abc" } })).status, 400)
      }))

    it.effect("at most WATCH_MAX_CONNECTIONS streams per process (503 beyond); heartbeats; all close when the order ends", () =>
      Effect.gen(function*() {
        const order = (yield* postJson("/orders", body)).body
        const open = yield* Effect.forEach([1, 2, 3], () => watch(order.orderId))
        assert.deepStrictEqual(open.map((w) => w.status), [200, 200, 200])
        const refused = yield* call("GET", `/orders/${order.orderId}/watch`)
        assert.strictEqual(refused.status, 503)
        assert.strictEqual(refused.body._tag, "TooManyWatchers")
        yield* open[0]!.seen(/: heartbeat/)
        assert.strictEqual((yield* call("POST", `/orders/${order.orderId}/cancel`)).status, 200)
        const ends = yield* Effect.forEach(open, (w) => Effect.fork(w.text))
        for (const f of ends) {
          const last = frames(yield* Fiber.join(f)).at(-1)!
          assert.deepStrictEqual([last.id, last.event, last.data.order.state], [2, "OrderCancelled", "CANCELLED"])
        }
        // the slots are free again
        const later = yield* watch(order.orderId)
        assert.strictEqual(later.status, 200)
        yield* later.text
      }))

    it.effect("GET /orders/:id?atVersion=N is the order as of version N; beyond the current version → 404", () =>
      Effect.gen(function*() {
        const order = (yield* postJson("/orders", body)).body
        yield* pay(order.orderId)
        const states = []
        for (const n of [1, 2, 3]) states.push((yield* call("GET", `/orders/${order.orderId}?atVersion=${n}`)).body)
        assert.deepStrictEqual(states.map((s) => [s.version, s.state]), [[1, "CREATED"], [2, "PAYMENT_PENDING"], [3, "PAID"]])
        assert.deepStrictEqual(states[2], (yield* call("GET", `/orders/${order.orderId}`)).body)
        const beyond = yield* call("GET", `/orders/${order.orderId}?atVersion=4`)
        assert.strictEqual(beyond.status, 404)
        assert.strictEqual(beyond.body._tag, "OrderVersionNotFound")
        assert.strictEqual(beyond.body.currentVersion, 3)
        assert.strictEqual((yield* call("GET", `/orders/${newId()}?atVersion=1`)).status, 404)
      }))
  })
})
