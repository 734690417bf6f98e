/**
 * Layers, composed once: the PostgreSQL and in-memory stores (swap one layer to change backends), the order
 * actors over them, and the HTTP server. main.ts and the tests build the program from these.
 */
import { HttpApiBuilder, HttpApiSwagger, HttpMiddleware, HttpServer } from "@effect/platform"
import { NodeContext, NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, Metric } from "effect"
import { createServer } from "node:http"
import { OrderActors } from "./actor/OrderActors.js"
import { MemoryDatabase } from "./eventstore/MemoryDatabase.js"
import { MemoryEventStore } from "./eventstore/MemoryEventStore.js"
import { PgEventStore } from "./eventstore/PgEventStore.js"
import { HttpHandlersLive, type HttpSettings } from "./http/Handlers.js"
import { MemoryIdempotencyKeys, PgIdempotencyKeys } from "./idempotency/IdempotencyKeys.js"
import { MemoryInbox, PgInbox } from "./inbox/Inbox.js"
import { httpLatency, measureHttp } from "./observability/Metrics.js"
import { Api } from "./http/Api.js"
import { StatsProjection } from "./projection/AsyncProjections.js"
import { RebuildJobs } from "./projection/Rebuild.js"
import { MemoryOutbox, PgOutbox } from "./outbox/Outbox.js"
import { LocalOutboxSignal, PgOutboxSignal } from "./outbox/OutboxSignal.js"
import { MemoryOrdersReadModel, PgOrdersReadModel } from "./projection/OrdersProjection.js"

/** EventStore, OrdersReadModel, IdempotencyKeys, Inbox, Outbox and the outbox wake-up over PostgreSQL (needs a PgClient). */
export const PgStores = Layer.mergeAll(PgEventStore, PgOrdersReadModel, PgIdempotencyKeys, PgInbox, PgOutbox, PgOutboxSignal)

/** The same services over one fresh in-memory database. */
export const MemoryStores = Layer.mergeAll(
  MemoryEventStore,
  MemoryOrdersReadModel,
  MemoryIdempotencyKeys,
  MemoryInbox,
  MemoryOutbox,
  LocalOutboxSignal
).pipe(
  Layer.provideMerge(MemoryDatabase.layer)
)

/** The order actors over whichever stores are provided. */
export const Domain = OrderActors.Default

export interface ServerOptions extends HttpSettings {
  readonly port: number
  readonly host: string
}

/** Records every request's latency in the `http_request_duration_seconds` histogram. */
export const measureLatency = HttpMiddleware.make((app) =>
  Effect.suspend(() => {
    const start = process.hrtime.bigint()
    return Effect.ensuring(
      app,
      Effect.suspend(() => Metric.update(httpLatency, Number(process.hrtime.bigint() - start) / 1e9))
    )
  })
)

/** The HTTP API with OpenAPI JSON at /docs/openapi.json and Swagger UI at /docs. Exposes the HttpServer. */
export const HttpLive = (options: ServerOptions) =>
  HttpApiBuilder.serve(measureHttp(Api)).pipe(
    Layer.provide(HttpApiSwagger.layer({ path: "/docs" })),
    Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/docs/openapi.json" })),
    Layer.provide(HttpHandlersLive(options)),
    Layer.provide(Layer.mergeAll(StatsProjection.Default, RebuildJobs.Default)),
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: options.port, host: options.host })),
    Layer.provide(NodeContext.layer)
  )

export { HttpServer }
