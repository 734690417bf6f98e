/**
 * The notifier end to end on the real PostgreSQL and the real Kafka broker (issue 20): an order's events become
 * signed webhooks (verified with the `standardwebhooks` package), in version order per (endpoint, order), with
 * durable retries (a 503's Retry-After honoured, a timeout retried), 410 disabling the endpoint, secret rotation
 * (both signatures valid during the overlap), a hanging endpoint that delays nothing of a healthy one, and a name
 * that resolves to a private address at delivery time refused without a call.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { WebhookEndpoints } from "../src/webhooks/Endpoints.js"
import { WebhookResolver } from "../src/webhooks/UrlSafety.js"
import { place, settle, test } from "./support/payments.js"
import { promtool } from "./support/promtool.js"
import { call } from "./support/TestApp.js"
import { TestSystem } from "./support/TestSystem.js"
import { waitFor } from "./support/waitFor.js"
import { type Received, verifies, webhookSink } from "./support/WebhookSink.js"

const env = {
  WEBHOOK_RETRY_SCHEDULE: "0,200ms,200ms,200ms",
  WEBHOOK_POLL_MS: "50",
  WEBHOOK_TIMEOUT_MS: "1000",
  WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT: "4",
  WEBHOOK_MAX_IN_FLIGHT: "8"
}
const roles = ["api", "relay", "worker", "projector", "notifier"] as const

const register = (url: string, eventTypes?: ReadonlyArray<string>) =>
  Effect.flatMap(WebhookEndpoints, (e) => e.create({ url, ...(eventTypes ? { eventTypes } : {}) })).pipe(
    Effect.provide(WebhookEndpoints.Default),
    Effect.orDie
  )

/** The received deliveries of an order, as (type, version). */
const ofOrder = (received: ReadonlyArray<Received>, orderId: string) =>
  received.filter((r) => r.json?.data?.order?.orderId === orderId)

const deliveryRows = (endpointId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ id: string; event_type: string; version: number; status: string; attempts: number; last_status: number | null; order_id: string }>`
      SELECT id, event_type, version, status, attempts, last_status, order_id FROM webhook_deliveries
      WHERE endpoint_id = ${endpointId} ORDER BY order_id, version`).pipe(Effect.orDie)

const endpointStatus = (endpointId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ status: string; disabled_reason: string | null }>`SELECT status, disabled_reason FROM webhook_endpoints WHERE id = ${endpointId}`).pipe(
    Effect.map((rows) => rows[0]!),
    Effect.orDie
  )

/** Disable every endpoint of earlier tests (one database per suite). */
const disableAll = Effect.flatMap(SqlClient.SqlClient, (sql) => sql`UPDATE webhook_endpoints SET status = 'disabled'`).pipe(Effect.orDie)

describe("webhooks end to end", () => {
  layer(TestSystem("webhooks", { roles: [...roles], env }), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.scoped("an order's events arrive signed, in version order, with the order as it was after each event", () =>
      test(Effect.gen(function*() {
        yield* disableAll
        const sink = yield* webhookSink()
        const { endpoint, secret } = yield* register(`${sink.url}/hooks/a`)
        const orderId = yield* place
        assert.strictEqual(yield* settle(orderId), "PAID")
        const got = yield* waitFor("three deliveries", Effect.sync(() => ofOrder(sink.received, orderId)), (r) => r.length >= 3)
        assert.deepStrictEqual(got.map((r) => [r.json.type, r.json.data.version]), [["order.placed", 1], ["order.payment_pending", 2], ["order.paid", 3]])
        assert.deepStrictEqual(got.map((r) => r.json.data.order.state), ["CREATED", "PAYMENT_PENDING", "PAID"])
        for (const r of got) {
          assert.isTrue(verifies(secret, r), "signature verifies with standardwebhooks")
          assert.strictEqual(r.headers["content-type"], "application/json")
          assert.match(String(r.headers["user-agent"]), /^orders-es\//)
        }
        assert.isFalse(verifies(`whsec_${Buffer.alloc(32, 1).toString("base64")}`, got[0]!), "another secret does not verify")
        // the sink answers before the notifier records the answer: wait for the rows
        const rows = yield* waitFor("recorded", deliveryRows(endpoint.id), (rows) => rows.filter((r) => r.order_id === orderId && r.status === "delivered").length === 3)
        assert.deepStrictEqual(rows.filter((r) => r.order_id === orderId).map((r) => [r.status, r.attempts]), [["delivered", 1], ["delivered", 1], ["delivered", 1]])
        // webhook-id is the delivery id
        assert.deepStrictEqual(got.map((r) => r.headers["webhook-id"]), rows.filter((r) => r.order_id === orderId).map((r) => r.id))
      })))

    it.scoped("only the subscribed types; a failing first event holds the order's later events back until it is delivered", () =>
      test(Effect.gen(function*() {
        yield* disableAll
        let refusals = 0
        const sink = yield* webhookSink((r) => r.json?.type === "order.placed" && refusals++ < 2 ? { status: 500 } : { status: 200 })
        const { endpoint } = yield* register(`${sink.url}/hooks/b`, ["order.placed", "order.paid"])
        const orderId = yield* place
        assert.strictEqual(yield* settle(orderId), "PAID")
        const got = yield* waitFor("placed then paid", Effect.sync(() => ofOrder(sink.received, orderId)), (r) => r.some((x) => x.json.type === "order.paid"))
        // two refused attempts of order.placed, then it, then order.paid — never paid before placed was delivered
        assert.deepStrictEqual(got.map((r) => r.json.type), ["order.placed", "order.placed", "order.placed", "order.paid"])
        // the same webhook-id on every attempt
        assert.strictEqual(new Set(got.slice(0, 3).map((r) => r.headers["webhook-id"])).size, 1)
        const rows = (yield* waitFor("recorded", deliveryRows(endpoint.id), (rows) =>
          rows.filter((r) => r.order_id === orderId && r.status === "delivered").length === 2)).filter((r) => r.order_id === orderId)
        assert.deepStrictEqual(rows.map((r) => [r.event_type, r.status, r.attempts]), [["order.placed", "delivered", 3], ["order.paid", "delivered", 1]])
      })))

    it.scoped("503 with Retry-After waits that long; a timeout is retried; 410 fails the delivery and disables the endpoint", () =>
      test(Effect.gen(function*() {
        yield* disableAll
        let calls = 0
        const sink = yield* webhookSink((r) => {
          if (r.json?.type !== "order.placed") return { status: 200 }
          calls++
          return calls === 1 ? { status: 503, headers: { "retry-after": "2" } } : calls === 2 ? "hang" : { status: 200 }
        })
        yield* register(`${sink.url}/hooks/c`, ["order.placed"])
        const orderId = yield* place
        const got = yield* waitFor("placed delivered after a 503 and a timeout", Effect.sync(() => ofOrder(sink.received, orderId)), (r) => r.length >= 3, "20 seconds")
        assert.isAtLeast(got[1]!.at - got[0]!.at, 1900, "Retry-After: 2 honoured")
        assert.isAtLeast(got[2]!.at - got[1]!.at, 1000, "the hang was given WEBHOOK_TIMEOUT_MS")

        const gone = yield* webhookSink(() => ({ status: 410 }))
        const { endpoint } = yield* register(`${gone.url}/hooks/gone`)
        const second = yield* place
        yield* waitFor("endpoint disabled", endpointStatus(endpoint.id), (s) => s.status === "disabled")
        assert.match((yield* endpointStatus(endpoint.id)).disabled_reason ?? "", /410/)
        yield* settle(second)
        yield* Effect.sleep("500 millis")
        // one call: the 410; nothing after it
        assert.strictEqual(ofOrder(gone.received, second).length, 1)
        const rows = yield* deliveryRows(endpoint.id)
        assert.deepStrictEqual(rows.filter((r) => r.last_status === 410).map((r) => r.status), ["failed"])
      })))

    it.scoped("/metrics: deliveries by outcome, latency, events by outcome, each endpoint's backlog; promtool-clean", () =>
      test(Effect.gen(function*() {
        yield* disableAll
        const sink = yield* webhookSink()
        const { endpoint } = yield* register(`${sink.url}/hooks/m`, ["order.paid"])
        const orderId = yield* place
        yield* waitFor("delivered", Effect.sync(() => ofOrder(sink.received, orderId)), (r) => r.length >= 1)
        const text = yield* waitFor(
          "the endpoint's backlog gauge",
          Effect.map(call("GET", "/metrics"), (r) => String(r.body)),
          (t) => t.includes(`webhook_endpoint_backlog{endpoint="${endpoint.id}"} 0`),
          "15 seconds"
        )
        const checked = promtool(text)
        assert.strictEqual(checked.output, "", checked.output)
        assert.match(text, /\nwebhook_deliveries_total\{outcome="delivered"\} [1-9]/)
        for (const outcome of ["retry", "failed", "refused"]) assert.match(text, new RegExp(`\\nwebhook_deliveries_total\\{outcome="${outcome}"\\} \\d+`))
        assert.match(text, /\nwebhook_delivery_latency_seconds_bucket\{le="1"\} [1-9]/)
        assert.match(text, /\nnotifier_events_total\{outcome="queued"\} [1-9]/)
        assert.match(text, /\nnotifier_events_total\{outcome="none"\} [1-9]/)
        assert.match(text, /\nwebhook_endpoints_disabled_total \d+/)
      })))

    it.scoped("an endpoint that answers 2xx and drips its body forever: delivered, and the connection ended at the timeout", () =>
      test(Effect.gen(function*() {
        yield* disableAll
        const sink = yield* webhookSink(() => ({ status: 200, drip: true }))
        const { endpoint } = yield* register(`${sink.url}/hooks/drip`, ["order.placed"])
        const started = Date.now()
        const orderId = yield* place
        yield* waitFor("delivered", deliveryRows(endpoint.id), (rows) => rows.some((r) => r.order_id === orderId && r.status === "delivered"))
        // recorded at the deadline (WEBHOOK_TIMEOUT_MS 1 s), not left open: the connection is closed
        assert.isAtLeast(Date.now() - started, 900)
        yield* waitFor("the connection closed", Effect.sync(() => sink.open()), (n) => n === 0, "5 seconds")
      })))

    it.scoped("a rotated secret: the old and the new both verify during the overlap", () =>
      test(Effect.gen(function*() {
        yield* disableAll
        const sink = yield* webhookSink()
        const { endpoint, secret: old } = yield* register(`${sink.url}/hooks/r`, ["order.placed"])
        const rotated = yield* Effect.flatMap(WebhookEndpoints, (e) => e.rotateSecret(endpoint.id)).pipe(Effect.provide(WebhookEndpoints.Default), Effect.orDie)
        assert.isTrue(rotated._tag === "Some")
        const fresh = rotated._tag === "Some" ? rotated.value.secret : ""
        assert.notStrictEqual(fresh, old)
        const orderId = yield* place
        const [r] = yield* waitFor("delivered", Effect.sync(() => ofOrder(sink.received, orderId)), (r) => r.length >= 1)
        assert.isTrue(verifies(fresh, r!))
        assert.isTrue(verifies(old, r!))
        assert.strictEqual(String(r!.headers["webhook-signature"]).split(" ").length, 2)
      })))

    it.scoped("an endpoint that hangs delays nothing of a healthy one", () =>
      test(Effect.gen(function*() {
        yield* disableAll
        const hanging = yield* webhookSink(() => "hang")
        const healthy = yield* webhookSink()
        yield* register(`${hanging.url}/hooks/hang`)
        yield* register(`${healthy.url}/hooks/ok`)
        const orders = yield* Effect.forEach(Array.from({ length: 20 }), () => place, { concurrency: 5 })
        yield* Effect.forEach(orders, settle, { concurrency: 5, discard: true })
        const ours = Effect.sync(() => healthy.received.filter((r) => orders.includes(r.json?.data?.order?.orderId)).length)
        const got = yield* waitFor("the healthy endpoint has every event", ours, (n) => n >= 60, "10 seconds")
        assert.strictEqual(got, 60)
        // the hanging endpoint was called, and never with more than its in-flight bound open at once
        assert.isAbove(hanging.received.length, 0)
        assert.isAtMost(hanging.maxOpen(), 4)
      })))
  })
})

describe("webhooks: a name resolving to a private address at delivery time", () => {
  const resolver = Layer.succeed(WebhookResolver, { resolve: async () => [{ address: "127.0.0.1", family: 4 as const }] })
  layer(
    TestSystem("webhooks-rebind", { roles: [...roles], env: { ...env, WEBHOOK_ALLOW_PRIVATE_URLS: "false" } }).pipe(Layer.provide(resolver)),
    { excludeTestServices: true, timeout: "60 seconds" }
  )((it) => {
    it.scoped("is refused, logged and never called", () =>
      test(Effect.gen(function*() {
        const sink = yield* webhookSink()
        const port = new URL(sink.url).port
        const sql = yield* SqlClient.SqlClient
        // registered as a public name (the registration check passes); it resolves to 127.0.0.1 when delivering
        const endpointId = "018f0000-0000-7000-8000-000000000001"
        yield* sql`INSERT INTO webhook_endpoints (id, url, secret) VALUES (${endpointId}, ${`https://hooks.example.com:${port}/x`}, 'whsec_AAAA')`
        const orderId = yield* place
        yield* settle(orderId)
        const rows = yield* waitFor("refused attempts", deliveryRows(endpointId), (rows) => rows.some((r) => r.attempts >= 2))
        assert.isTrue(rows.every((r) => r.status !== "delivered"))
        assert.strictEqual(sink.received.length, 0)
      }).pipe(Effect.orDie)))
  })
})

describe("webhooks: an endpoint failing every delivery for WEBHOOK_DISABLE_AFTER", () => {
  layer(
    TestSystem("webhooks-disable", { roles: [...roles], env: { ...env, WEBHOOK_DISABLE_AFTER: "1s", WEBHOOK_RETRY_SCHEDULE: "0,300ms,300ms,300ms,300ms,300ms,300ms,300ms" } }),
    { excludeTestServices: true, timeout: "60 seconds" }
  )((it) => {
    it.scoped("is disabled, logged and counted, and gets nothing more", () =>
      test(Effect.gen(function*() {
        // the counter is the process's (other suites of this file count in it too)
        const disabledCount = Effect.map(call("GET", "/metrics"), (r) => Number(/\nwebhook_endpoints_disabled_total (\d+)\n/.exec(String(r.body))?.[1]))
        const before = yield* disabledCount
        const sink = yield* webhookSink(() => ({ status: 500 }))
        const { endpoint } = yield* register(`${sink.url}/hooks/failing`, ["order.placed"])
        yield* place
        const disabled = yield* waitFor("disabled", endpointStatus(endpoint.id), (s) => s.status === "disabled", "15 seconds")
        assert.match(disabled.disabled_reason ?? "", /every delivery failed since/)
        assert.strictEqual(yield* disabledCount, before + 1)
        // nothing is sent to a disabled endpoint
        const calls = sink.received.length
        yield* place
        yield* Effect.sleep("1 second")
        assert.strictEqual(sink.received.length, calls)
      })))
  })
})
