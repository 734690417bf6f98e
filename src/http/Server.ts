/**
 * The HTTP servers: node's server with the timeouts of issue 12 and JSON answers for what node refuses itself,
 * serving the composed API (src/http/Api.ts) with its OpenAPI document and Swagger UI — or, in a process
 * without the api role, the operations endpoints alone (src/ops) — behind the failure middleware (defects →
 * 503/500) and the per-route latency histogram.
 */
import type * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSwagger from "@effect/platform/HttpApiSwagger"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import { NodeContext, NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, Metric, Runtime } from "effect"
import { createServer, type Server } from "node:http"
import type { Duplex } from "node:stream"
import { measureHttp } from "../observability/HttpMetrics.js"
import { tracingEnabled } from "../observability/Tracing.js"
import { OpsApi } from "../ops/Api.js"
import { OpsHandlersLive } from "../ops/Http.js"
import { RebuildJobs } from "../projection/Rebuild.js"
import { StatsProjection } from "../projection/StatsProjection.js"
import { WebhookEndpoints } from "../webhooks/Endpoints.js"
import { Api } from "./Api.js"
import { HttpHandlersLive } from "./ApiLive.js"
import { failureMiddleware } from "./Failures.js"

/** Where a server listens, and how long it waits for a request to arrive. */
export interface Listen {
  readonly port: number
  readonly host: string
  /** Request headers not complete after this long → 408 and the connection closed. */
  readonly headersTimeoutMs: number
  /** A body not fully received after this long → 408 and the connection closed. */
  readonly bodyTimeoutMs: number
}

export const httpClientErrors = Metric.counter("http_client_errors_total", {
  description: "connections answered by the server itself before any handler ran (malformed, slow or oversized requests)",
  incremental: true
})

const clientErrorAnswer = (code: string | undefined) =>
  code === "ERR_HTTP_REQUEST_TIMEOUT"
    ? { status: 408, reason: "Request Timeout", tag: "RequestTimeout", message: "the request did not arrive in time" }
    : code === "HPE_HEADER_OVERFLOW"
    ? { status: 431, reason: "Request Header Fields Too Large", tag: "RequestHeaderFieldsTooLarge", message: "the request headers are too large" }
    : { status: 400, reason: "Bad Request", tag: "BadRequest", message: "the request is not valid HTTP" }

/**
 * node's HTTP server with the timeouts of issue 12 (slow headers, slow bodies cut off in seconds, checked every
 * second rather than node's default 30 s) and JSON bodies for what node answers itself (clientError: malformed
 * HTTP 400, slow request 408, oversized headers 431), each logged and counted.
 */
const makeServer = (options: Listen, runtime: Runtime.Runtime<never>): Server => {
  const headersTimeout = options.headersTimeoutMs
  const server = createServer({
    headersTimeout,
    // the handler's own body timeout answers first; this is node's backstop for the whole request
    requestTimeout: headersTimeout + options.bodyTimeoutMs + 1_000,
    connectionsCheckingInterval: Math.min(1_000, Math.max(100, Math.floor(headersTimeout / 4)))
  })
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Duplex) => {
    const answer = clientErrorAnswer(error.code)
    const started = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true
    Runtime.runFork(runtime)(
      Effect.logInfo("request refused by the HTTP server").pipe(
        Effect.annotateLogs({ type: "HTTP_CLIENT_ERROR", status: answer.status, code: error.code ?? "unknown" }),
        Effect.zipRight(Metric.update(httpClientErrors.pipe(Metric.tagged("status", String(answer.status))), 1))
      )
    )
    if (error.code === "ECONNRESET" || !socket.writable || started) {
      socket.destroy()
      return
    }
    const body = JSON.stringify({ _tag: answer.tag, message: answer.message })
    socket.end(
      `HTTP/1.1 ${answer.status} ${answer.reason}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
    )
  })
  return server
}

/**
 * `handlers` of `api` on node's server above (exposed as the HttpServer), behind the failure middleware and the
 * latency histogram, with `documents` (routes of their own, such as the OpenAPI document).
 */
const serveApi = <Id extends string, Groups extends HttpApiGroup.HttpApiGroup.Any, E, R, EH, RH>(
  api: HttpApi.HttpApi<Id, Groups, E, R>,
  handlers: Layer.Layer<HttpApi.Api, EH, RH>,
  listen: Listen,
  documents: Layer.Layer<never, never, HttpApi.Api> = Layer.empty
) =>
  HttpApiBuilder.serve(measureHttp(api)).pipe(
    // the platform's tracer middleware builds a span per request (URL parse, header copies, attributes) even
    // with no exporter: only when one is installed (src/observability/Tracing.ts)
    HttpMiddleware.withTracerDisabledWhen(() => !tracingEnabled()),
    Layer.provide(documents),
    Layer.provide(HttpApiBuilder.middleware(failureMiddleware({ retryAfterSeconds: 1 }) as unknown as HttpApiBuilder.MiddlewareFn<never>)),
    Layer.provide(handlers),
    Layer.provideMerge(
      Layer.unwrapEffect(
        Effect.map(Effect.runtime<never>(), (runtime) =>
          NodeHttpServer.layer(() => makeServer(listen, runtime), { port: listen.port, host: listen.host }))
      )
    ),
    Layer.provide(NodeContext.layer)
  )

/** The HTTP API with OpenAPI JSON at /docs/openapi.json and Swagger UI at /docs. Exposes the HttpServer. */
export const HttpLive = (listen: Listen) =>
  serveApi(
    Api,
    HttpHandlersLive.pipe(Layer.provide(Layer.mergeAll(StatsProjection.Default, RebuildJobs.Default, WebhookEndpoints.Default))),
    listen,
    Layer.merge(HttpApiSwagger.layer({ path: "/docs" }), HttpApiBuilder.middlewareOpenApi({ path: "/docs/openapi.json" }))
  )

/** The operations endpoints alone (src/ops: health, metrics) for a process without the api role. Exposes the HttpServer. */
export const OpsHttpLive = (options: Listen & { readonly workerGroup: string }) =>
  serveApi(OpsApi, OpsHandlersLive(options.workerGroup).pipe(Layer.provide(StatsProjection.Default)), options)
