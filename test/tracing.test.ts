/**
 * Tracing (issue 13, items 1-2): with TRACING=zipkin, one order is one trace in a real Zipkin server
 * (started through scripts/zipkin.sh), read back from Zipkin's own API: the POST's server span, the actor
 * commands and appends, the worker's consume continuing the trace from the Kafka headers, the charge with
 * the provider's HTTP call, and the append of OrderPaid — one trace id, every parent in the trace.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Option } from "effect"
import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { fileURLToPath } from "node:url"
import {
  formatTraceparent,
  linksFromMetadata,
  parseTraceparent,
  tracingLayer,
  withRemoteParent
} from "../src/observability/Tracing.js"
import { WebhookEndpoints } from "../src/webhooks/Endpoints.js"
import { call, postJson } from "./support/TestApp.js"
import { webhookSink } from "./support/WebhookSink.js"
import { TestSystem } from "./support/TestSystem.js"
import { waitFor } from "./support/waitFor.js"

describe("W3C trace context", () => {
  it("parses a traceparent, refuses malformed or all-zero ones", () => {
    const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    const span = Option.getOrThrow(parseTraceparent(tp))
    assert.deepStrictEqual([span.traceId, span.spanId, span.sampled], ["4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", true])
    assert.strictEqual(formatTraceparent(span), tp)
    for (const bad of [undefined, "", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"]) {
      assert.isTrue(Option.isNone(parseTraceparent(bad)), String(bad))
    }
    const links = linksFromMetadata([{ traceparent: tp }, { traceparent: tp }, {}, { traceparent: "x" }])
    assert.strictEqual(links.length, 1)
  })

  it.effect("a consumer continues the trace its headers name", () =>
    Effect.gen(function*() {
      const parent = yield* Effect.currentParentSpan.pipe(
        withRemoteParent({ traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" })
      )
      assert.strictEqual(parent.traceId, "4bf92f3577b34da6a3ce929d0e0e4736")
      assert.strictEqual(parent.spanId, "00f067aa0ba902b7")
      const none = yield* Effect.option(Effect.currentParentSpan.pipe(withRemoteParent({ traceparent: "bogus" })))
      assert.isTrue(Option.isNone(none))
    }))
})

const zipkinScript = fileURLToPath(new URL("../scripts/zipkin.sh", import.meta.url))
/** Zipkin through the project's script (fetched once into ~/.cache/orders-es/zipkin, reused when running). */
const zipkinUrl = () => execFileSync("bash", [zipkinScript, "start"], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim()

const getJson = (url: string) =>
  Effect.promise(async () => {
    const response = await fetch(url)
    return { status: response.status, body: response.status === 200 ? await response.json() : undefined }
  })

interface ZipkinSpan {
  readonly traceId: string
  readonly id: string
  readonly parentId?: string
  readonly name: string
  readonly kind?: string
  readonly tags?: Record<string, string>
}

describe("tracing end to end in Zipkin", () => {
  const zipkin = zipkinUrl()
  const serviceName = `orders-es-test-${randomBytes(3).toString("hex")}`
  const Tracing = tracingLayer("all").pipe(
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([
      ["TRACING", "zipkin"],
      ["ZIPKIN_URL", `${zipkin}/api/v2/spans`],
      ["OTEL_SERVICE_NAME", serviceName],
      ["OTEL_BSP_SCHEDULE_DELAY", "200"]
    ]))))
  )

  layer(TestSystem("tracing", { roles: ["api", "relay", "worker", "projector", "notifier"] }).pipe(Layer.provide(Tracing)), { excludeTestServices: true, timeout: "120 seconds" })((it) => {
    it.effect("one order is one trace from POST to OrderPaid, read back from Zipkin", () =>
      Effect.gen(function*() {
        const placed = yield* postJson("/orders", { userId: "8f0e2d0a-3f5e-4a7b-9c1d-2e3f4a5b6c7d", amount: "12.00", currency: "EUR" })
        assert.strictEqual(placed.status, 201)
        const orderId = placed.body.orderId as string
        yield* waitFor("PAID", Effect.map(call("GET", `/orders/${orderId}`), (r) => r.body.state), (s) => s === "PAID")

        // every event of the order carries the trace context of one trace
        const events = (yield* call("GET", `/orders/${orderId}/events`)).body as Array<{ type: string; metadata: Record<string, string> }>
        assert.deepStrictEqual(events.map((e) => e.type), ["OrderPlaced", "PaymentRequested", "OrderPaid"])
        const traceIds = events.map((e) => Option.getOrThrow(parseTraceparent(e.metadata.traceparent)).traceId)
        const traceId = traceIds[0]!
        assert.deepStrictEqual(traceIds, [traceId, traceId, traceId])

        const named = (spans: ReadonlyArray<ZipkinSpan>, name: string, tag?: [string, string]) =>
          spans.filter((s) => s.name === name && (tag === undefined || s.tags?.[tag[0]] === tag[1]))
        const complete = (spans: ReadonlyArray<ZipkinSpan>) =>
          named(spans, "eventstore.append", ["event.types", "OrderPaid"]).length === 1 &&
          named(spans, "post /charges").length === 1 && named(spans, "http.server post").length >= 1 &&
          // the notifier consumes the three events too (a parent ends, and is exported, after its children)
          named(spans, "notifier.consume").length === 3
        const trace = yield* waitFor(
          `trace ${traceId} in Zipkin`,
          Effect.map(getJson(`${zipkin}/api/v2/trace/${traceId}`), (r) => (r.body ?? []) as Array<ZipkinSpan>),
          complete,
          "30 seconds"
        )

        // one trace, one root (the POST), every parent inside it
        const ids = new Set(trace.map((s) => s.id))
        assert.isTrue(trace.every((s) => s.traceId === traceId))
        const roots = trace.filter((s) => s.parentId === undefined)
        assert.strictEqual(roots.length, 1)
        assert.strictEqual(roots[0]!.kind, "SERVER")
        assert.strictEqual(roots[0]!.name, "http.server post")
        for (const s of trace) if (s.parentId !== undefined) assert.isTrue(ids.has(s.parentId), `parent of ${s.name}`)
        const byId = new Map(trace.map((s) => [s.id, s]))
        const parentOf = (s: ZipkinSpan) => byId.get(s.parentId!)!

        // POST → PlaceOrder → append OrderPlaced
        const place = named(trace, "orderactors.placeorder")[0]!
        assert.strictEqual(parentOf(place).id, roots[0]!.id)
        assert.strictEqual(parentOf(named(trace, "eventstore.append", ["event.types", "OrderPlaced"])[0]!).id, place.id)
        // the worker's consume of OrderPlaced continues the trace from the Kafka headers, under the command that appended it
        const consume = named(trace, "paymentworker.consume", ["event.type", "OrderPlaced"])
        assert.strictEqual(consume.length, 1)
        assert.strictEqual(consume[0]!.kind, "CONSUMER")
        assert.strictEqual(parentOf(consume[0]!).id, place.id)
        // → StartPayment, charge (with the provider's HTTP call), RecordPaymentSucceeded → append OrderPaid
        const start = named(trace, "orderactors.startpayment")[0]!
        const charge = named(trace, "paymentprocessor.charge")[0]!
        const record = named(trace, "orderactors.recordpaymentsucceeded")[0]!
        for (const s of [start, charge, record]) assert.strictEqual(parentOf(s).id, consume[0]!.id, s.name)
        const http = named(trace, "post /charges")[0]!
        assert.strictEqual(http.kind, "CLIENT")
        assert.strictEqual(parentOf(http).id, charge.id)
        assert.strictEqual(parentOf(named(trace, "eventstore.append", ["event.types", "OrderPaid"])[0]!).id, record.id)

        // the relay's publish is a trace of its own (linked to the events' traces; Zipkin does not show links)
        const relay = yield* waitFor(
          "relay.publish spans in Zipkin",
          Effect.map(
            getJson(`${zipkin}/api/v2/traces?serviceName=${serviceName}&spanName=relay.publish&lookback=600000&limit=10`),
            (r) => (r.body ?? []) as Array<Array<ZipkinSpan>>
          ),
          (traces) => traces.length > 0,
          "30 seconds"
        )
        assert.isTrue(relay.flat().every((s) => s.traceId !== traceId || s.name !== "relay.publish"))
      }))

    it.scoped("a webhook delivery continues the order's trace (the notifier's consume and each POST to the endpoint)", () =>
      Effect.gen(function*() {
        const sink = yield* webhookSink()
        yield* Effect.flatMap(WebhookEndpoints, (e) => e.create({ url: `${sink.url}/hooks/t`, eventTypes: ["order.paid"] })).pipe(
          Effect.provide(WebhookEndpoints.Default),
          Effect.orDie
        )
        const placed = yield* postJson("/orders", { userId: "8f0e2d0a-3f5e-4a7b-9c1d-2e3f4a5b6c7d", amount: "13.00", currency: "EUR" })
        const orderId = placed.body.orderId as string
        yield* waitFor("delivered", Effect.sync(() => sink.received.filter((r) => r.json?.data?.order?.orderId === orderId)), (r) => r.length === 1)
        const events = (yield* call("GET", `/orders/${orderId}/events`)).body as Array<{ metadata: Record<string, string> }>
        const traceId = Option.getOrThrow(parseTraceparent(events[0]!.metadata.traceparent)).traceId
        const trace = yield* waitFor(
          `the notifier's spans in trace ${traceId}`,
          Effect.map(getJson(`${zipkin}/api/v2/trace/${traceId}`), (r) => (r.body ?? []) as Array<ZipkinSpan>),
          (spans) => spans.some((s) => s.name === "notifier.deliver"),
          "30 seconds"
        )
        const ids = new Set(trace.map((s) => s.id))
        const deliver = trace.filter((s) => s.name === "notifier.deliver")
        assert.strictEqual(deliver.length, 1)
        assert.strictEqual(deliver[0]!.kind, "CLIENT")
        assert.isTrue(ids.has(deliver[0]!.parentId!), "its parent is in the order's trace")
        assert.isTrue(trace.some((s) => s.name === "notifier.consume" && s.kind === "CONSUMER"))
      }))
  })
})
