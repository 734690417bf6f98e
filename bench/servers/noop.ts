/**
 * Yardstick: a do-nothing POST /orders on our own HTTP stack (Effect HttpApi + @effect/platform-node, with
 * the same latency middleware), answering 201 with a fixed order view. What the API costs before any work.
 * Usage: node --import tsx bench/servers/noop.ts <port>
 */
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpMiddleware, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Metric } from "effect"
import { createServer } from "node:http"
import { httpLatency } from "../../src/observability/HttpMetrics.js"
import { OrderView } from "../../src/orders/Api.js"

const port = Number(process.argv[2] ?? 3201)

/** Records every request's latency in the `http_request_duration_seconds` histogram (the api's own server
 * measures per route: src/observability/HttpMetrics.ts `measureHttp`). */
const measureLatency = HttpMiddleware.make((app) =>
  Effect.suspend(() => {
    const start = process.hrtime.bigint()
    return Effect.ensuring(
      app,
      Effect.suspend(() => Metric.update(httpLatency, Number(process.hrtime.bigint() - start) / 1e9))
    )
  })
)

const NoopApi = HttpApi.make("noop").add(
  HttpApiGroup.make("orders").add(HttpApiEndpoint.post("place", "/orders").addSuccess(OrderView, { status: 201 }))
)

const view = {
  orderId: "0193b5c0-0000-7000-8000-000000000000",
  userId: "2f1c8e7a-0d5b-4c1e-9a0e-6a4d1b2c3d4e",
  amount: "10.00",
  currency: "EUR",
  state: "PENDING",
  version: 1,
  paymentId: null,
  reason: null,
  createdAt: new Date(0).toISOString(),
  updatedAt: new Date(0).toISOString()
}

const Handlers = HttpApiBuilder.group(NoopApi, "orders", (handlers) =>
  handlers.handleRaw("place", () => Effect.succeed(HttpServerResponse.unsafeJson(view, { status: 201 }))))

HttpApiBuilder.serve(measureLatency).pipe(
  Layer.provide(HttpApiBuilder.api(NoopApi).pipe(Layer.provide(Handlers))),
  Layer.provide(NodeHttpServer.layer(createServer, { port, host: "127.0.0.1" })),
  Layer.launch,
  NodeRuntime.runMain
)
