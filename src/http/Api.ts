/**
 * The HTTP API as a spec (@effect/platform HttpApi): endpoints, payloads, responses, and the status of every
 * error a client can cause. Status codes are declared here, never in the domain.
 *
 * 400 the request cannot be read (not JSON, nested too deep, not UTF-8, missing/unknown/mistyped fields,
 * unknown query parameters, malformed ids or headers); 422 it can be read but its values are refused (amount
 * or currency rules; Idempotency-Key reused with another body); 404 no such order; 408 the body did not arrive
 * in time; 409 the order's state forbids it, or the Idempotency-Key's first request is still running; 413 body
 * over the limit; 415 body not application/json in UTF-8; 503 infrastructure unavailable (retry); 500 a bug.
 */
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, HttpApiSchema, HttpApiSecurity, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { DeadLetter } from "../deadletter/DeadLetters.js"
import { InvalidAmount } from "../domain/Money.js"
import { IllegalTransition, OrderAlreadyExists, OrderId, OrderNotFound, OrderStatus, UserId } from "../domain/Order.js"

export class BadRequest extends Schema.TaggedError<BadRequest>()("BadRequest", {
  message: Schema.String
}, HttpApiSchema.annotations({ status: 400 })) {}

export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", {
  message: Schema.String
}, HttpApiSchema.annotations({ status: 413 })) {}

export class UnsupportedMediaType extends Schema.TaggedError<UnsupportedMediaType>()("UnsupportedMediaType", {
  message: Schema.String
}, HttpApiSchema.annotations({ status: 415 })) {}

export class IdempotencyKeyInUse extends Schema.TaggedError<IdempotencyKeyInUse>()("IdempotencyKeyInUse", {
  message: Schema.String
}, HttpApiSchema.annotations({ status: 409 })) {}

export class IdempotencyKeyMismatch extends Schema.TaggedError<IdempotencyKeyMismatch>()("IdempotencyKeyMismatch", {
  message: Schema.String
}, HttpApiSchema.annotations({ status: 422 })) {}

/** The order kept changing under this request (other processes writing it): the client may retry. */
export class OrderBusy extends Schema.TaggedError<OrderBusy>()("OrderBusy", {
  orderId: Schema.String,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 409 })) {}

/** The body did not arrive within BODY_TIMEOUT_MS; the connection is closed after this answer. */
export class RequestTimeout extends Schema.TaggedError<RequestTimeout>()("RequestTimeout", {
  message: Schema.String
}, HttpApiSchema.annotations({ status: 408 })) {}

/** An infrastructure failure (database, broker, overload): retry after `Retry-After` seconds. */
export class ServiceUnavailable extends Schema.TaggedError<ServiceUnavailable>()("ServiceUnavailable", {
  cause: Schema.Literal("DatabaseUnavailable", "BrokerUnavailable", "Overloaded"),
  message: Schema.String,
  correlationId: Schema.String
}, HttpApiSchema.annotations({ status: 503 })) {}

/** A bug: logged with the correlation id the body carries. */
export class InternalError extends Schema.TaggedError<InternalError>()("InternalError", {
  message: Schema.String,
  correlationId: Schema.String
}, HttpApiSchema.annotations({ status: 500 })) {}

/** This process already serves WATCH_MAX_CONNECTIONS watch streams. */
export class TooManyWatchers extends Schema.TaggedError<TooManyWatchers>()("TooManyWatchers", {
  message: Schema.String
}, HttpApiSchema.annotations({ status: 503 })) {}

/** `atVersion` beyond the order's current version. */
export class OrderVersionNotFound extends Schema.TaggedError<OrderVersionNotFound>()("OrderVersionNotFound", {
  orderId: Schema.String,
  version: Schema.Int,
  currentVersion: Schema.Int,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 404 })) {}

export class NotReady extends Schema.TaggedError<NotReady>()("NotReady", {
  message: Schema.String
}, HttpApiSchema.annotations({ status: 503 })) {}

/** An operation's summary and description in the OpenAPI document. */
const doc = (summary: string, description: string) => OpenApi.annotations({ summary, description })

/** Body of POST /orders. Unknown fields are an error, not ignored. */
export const PlaceOrderBody = Schema.Struct({
  userId: UserId,
  amount: Schema.String.annotations({ description: "decimal string, e.g. \"299.99\"", examples: ["299.99"] }),
  currency: Schema.String.annotations({ description: "ISO-4217 code", examples: ["EUR"] })
}).annotations({ parseOptions: { onExcessProperty: "error" } })

export const IdempotencyKey = Schema.String.pipe(
  Schema.pattern(/^[\x20-\x7e]{1,255}$/, {
    message: () => "Idempotency-Key must be 1 to 255 printable ASCII characters"
  })
)

export const OrderView = Schema.Struct({
  orderId: Schema.String,
  userId: Schema.String,
  amount: Schema.String,
  currency: Schema.String,
  state: OrderStatus,
  version: Schema.Int,
  paymentId: Schema.NullOr(Schema.String),
  reason: Schema.NullOr(Schema.String),
  createdAt: Schema.String,
  updatedAt: Schema.String
})
export type OrderView = typeof OrderView.Type

export const OrderPage = Schema.Struct({
  items: Schema.Array(OrderView),
  nextCursor: Schema.NullOr(Schema.String)
})

export const EventView = Schema.Struct({
  position: Schema.String,
  version: Schema.Int,
  eventId: Schema.String,
  type: Schema.String,
  schemaVersion: Schema.Int,
  recordedAt: Schema.String,
  data: Schema.Unknown,
  metadata: Schema.Unknown
})
export type EventView = typeof EventView.Type

const OrderPath = Schema.Struct({ orderId: OrderId })

/** Query parameters are as strict as bodies: an unknown one (`?foo=`, `limit[]=`) is a 400, not ignored. */
const strict = <S extends Schema.Schema.Any>(schema: S) => schema.annotations({ parseOptions: { onExcessProperty: "error" } })

/** For endpoints that take no query parameters at all. */
export const NoParams = Schema.Record({ key: Schema.String, value: Schema.Never }).annotations({
  description: "no query parameters"
})

export const ListParams = strict(Schema.Struct({
  state: Schema.optional(OrderStatus),
  userId: Schema.optional(UserId),
  limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 100))),
  cursor: Schema.optional(Schema.String)
}))

export const GetParams = strict(Schema.Struct({
  atVersion: Schema.optional(
    Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 1_000_000)).annotations({
      description: "the order as it was after this version of its stream (folded from the log), for audits",
      examples: [2]
    })
  )
}))

export const WatchHeaders = Schema.Struct({
  "last-event-id": Schema.optional(
    Schema.NumberFromString.pipe(Schema.int(), Schema.between(0, 1_000_000)).annotations({
      description: "resume after this stream version (the `id:` of the last event received)"
    })
  )
})

/** A `text/event-stream` of the order's events; see the endpoint's description for the frame format. */
export const EventStreamText = HttpApiSchema.Text({ contentType: "text/event-stream" }).annotations({
  description: "server-sent events: one frame per event, `id:` = stream version, `event:` = event type, " +
    "`data:` = JSON {event, order}; comment lines are heartbeats",
  examples: [
    "retry: 2000\n\nid: 1\nevent: OrderPlaced\ndata: {\"event\":{\"version\":1,\"type\":\"OrderPlaced\"},\"order\":{\"state\":\"CREATED\"}}\n\n" +
    "id: 2\nevent: PaymentRequested\ndata: {\"event\":{\"version\":2,\"type\":\"PaymentRequested\"},\"order\":{\"state\":\"PAYMENT_PENDING\"}}\n\n" +
    "id: 3\nevent: OrderPaid\ndata: {\"event\":{\"version\":3,\"type\":\"OrderPaid\"},\"order\":{\"state\":\"PAID\"}}\n\n"
  ]
})

export class OrdersGroup extends HttpApiGroup.make("orders").annotateContext(OpenApi.annotations({ description: "Place, read, watch and cancel orders." }))
  .add(
    HttpApiEndpoint.post("place", "/orders").annotateContext(doc("Place an order", "Creates an order in state CREATED; its payment starts asynchronously. With an `Idempotency-Key` header (Stripe semantics) a retried request gets the first response again (`Idempotent-Replayed: true`) and creates nothing; the same key with another body is a 422; while the first request runs, a 409. A request that failed (e.g. a 503) can be retried at once with the same key."))
      .setPayload(PlaceOrderBody)
      .setUrlParams(NoParams)
      .setHeaders(Schema.Struct({ "idempotency-key": Schema.optional(IdempotencyKey) }))
      .addSuccess(OrderView, { status: 201 })
      .addError(BadRequest)
      .addError(InvalidAmount, { status: 422 })
      .addError(IdempotencyKeyMismatch)
      .addError(IdempotencyKeyInUse)
      .addError(OrderAlreadyExists, { status: 409 })
      .addError(OrderBusy)
      .addError(PayloadTooLarge)
      .addError(UnsupportedMediaType)
      .addError(RequestTimeout)
  )
  .add(
    HttpApiEndpoint.get("list", "/orders").annotateContext(doc("List orders", "Orders newest first, filtered by state and user, paged with the opaque `nextCursor` of the previous page. Unknown query parameters are a 400."))
      .setUrlParams(ListParams)
      .addSuccess(OrderPage)
      .addError(BadRequest)
  )
  .add(
    HttpApiEndpoint.get("get", "/orders/:orderId").annotateContext(doc("Get an order", "The order from the `orders` projection; with `atVersion=N`, the order as it was after version N of its event stream, folded from the log (for audits)."))
      .setPath(OrderPath)
      .setUrlParams(GetParams)
      .addSuccess(OrderView)
      .addError(BadRequest)
      .addError(OrderNotFound, { status: 404 })
      .addError(OrderVersionNotFound)
  )
  .add(
    HttpApiEndpoint.get("events", "/orders/:orderId/events").annotateContext(doc("List the events of an order", "Every event of the order's stream in version order, as stored (encoded data, metadata with correlation and causation ids)."))
      .setPath(OrderPath)
      .setUrlParams(NoParams)
      .addSuccess(Schema.Array(EventView))
      .addError(OrderNotFound, { status: 404 })
  )
  .add(
    HttpApiEndpoint.get("watch", "/orders/:orderId/watch").annotateContext(doc("Watch an order until it settles", "Server-sent events (`text/event-stream`): one frame per event of the order, `id:` = its stream version, `event:` = its type, `data:` = `{\"event\", \"order\"}`; heartbeat comments keep the stream open; it ends after the terminal event (PAID, FAILED, CANCELLED). Reconnect with `Last-Event-ID` to resume after that version. At most WATCH_MAX_CONNECTIONS streams per process (503 beyond)."))
      .setPath(OrderPath)
      .setUrlParams(NoParams)
      .setHeaders(WatchHeaders)
      .addSuccess(EventStreamText)
      .addError(OrderNotFound, { status: 404 })
      .addError(TooManyWatchers)
  )
  .add(
    HttpApiEndpoint.post("cancel", "/orders/:orderId/cancel").annotateContext(doc("Cancel an order", "CREATED → CANCELLED; cancelling a cancelled order again is a no-op 200; a PAYMENT_PENDING, PAID or FAILED order is a 409."))
      .setPath(OrderPath)
      .setUrlParams(NoParams)
      .addSuccess(OrderView)
      .addError(OrderNotFound, { status: 404 })
      .addError(IllegalTransition, { status: 409 })
      .addError(OrderBusy)
  )
{}

export class HealthGroup extends HttpApiGroup.make("health").annotateContext(OpenApi.annotations({ description: "Liveness and readiness probes." }))
  .add(HttpApiEndpoint.get("live", "/health/live").annotateContext(doc("Liveness", "200 while the process runs.")).setUrlParams(NoParams).addSuccess(Schema.Struct({ status: Schema.Literal("ok") })))
  .add(
    HttpApiEndpoint.get("ready", "/health/ready").annotateContext(doc("Readiness", "200 once the database answers with every migration applied, else 503.")).setUrlParams(NoParams)
      .addSuccess(Schema.Struct({ status: Schema.Literal("ready") }))
      .addError(NotReady)
  )
{}

export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  message: Schema.String
}, HttpApiSchema.annotations({ status: 401 })) {}

export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", {
  message: Schema.String
}, HttpApiSchema.annotations({ status: 403 })) {}

export class DeadLetterNotFound extends Schema.TaggedError<DeadLetterNotFound>()("DeadLetterNotFound", {
  id: Schema.String,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 404 })) {}

export class DeadLetterNotParked extends Schema.TaggedError<DeadLetterNotParked>()("DeadLetterNotParked", {
  id: Schema.String,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 409 })) {}

/** `Authorization: Bearer <ADMIN_TOKEN>`: 401 without a token, 403 with a wrong one. */
export class AdminAuth extends HttpApiMiddleware.Tag<AdminAuth>()("AdminAuth", {
  failure: Schema.Union(Unauthorized, Forbidden),
  security: { bearer: HttpApiSecurity.bearer }
}) {}

const DeadLetterPath = Schema.Struct({ id: Schema.NumberFromString.pipe(Schema.int(), Schema.positive()) })

export class AdminGroup extends HttpApiGroup.make("admin").annotateContext(OpenApi.annotations({ description: "Operator API for the dead letters of the payment worker (bearer token)." }))
  .add(
    HttpApiEndpoint.get("listDeadLetters", "/admin/dead-letters").annotateContext(doc("List dead letters", "Messages the payment worker parked, newest first, optionally by status."))
      .setUrlParams(strict(Schema.Struct({
        status: Schema.optional(Schema.Literal("parked", "replayed", "discarded")),
        limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 1000)))
      })))
      .addSuccess(Schema.Array(DeadLetter))
  )
  .add(
    HttpApiEndpoint.get("getDeadLetter", "/admin/dead-letters/:id").annotateContext(doc("Get a dead letter", "One parked message with its exact bytes, error and attempt count.")).setUrlParams(NoParams)
      .setPath(DeadLetterPath)
      .addSuccess(DeadLetter)
      .addError(DeadLetterNotFound)
  )
  .add(
    HttpApiEndpoint.post("replayDeadLetter", "/admin/dead-letters/:id/replay").annotateContext(doc("Replay a dead letter", "Puts a parked message back on the topic; 409 unless it is parked.")).setUrlParams(NoParams)
      .setPath(DeadLetterPath)
      .addSuccess(DeadLetter)
      .addError(DeadLetterNotFound)
      .addError(DeadLetterNotParked)
  )
  .add(
    HttpApiEndpoint.post("discardDeadLetter", "/admin/dead-letters/:id/discard").annotateContext(doc("Discard a dead letter", "Marks a parked message discarded; 409 unless it is parked.")).setUrlParams(NoParams)
      .setPath(DeadLetterPath)
      .addSuccess(DeadLetter)
      .addError(DeadLetterNotFound)
      .addError(DeadLetterNotParked)
  )
  .middleware(AdminAuth)
{}

export const RebuildStatus = Schema.Struct({
  running: Schema.Boolean,
  progress: Schema.NullOr(Schema.Struct({ done: Schema.Number, total: Schema.Number, eventsPerSecond: Schema.Number, etaSeconds: Schema.Number })),
  lastResult: Schema.NullOr(Schema.Struct({ events: Schema.Number, orders: Schema.Number, caughtUp: Schema.Number, seconds: Schema.Number })),
  lastError: Schema.NullOr(Schema.String)
})

export const ProjectionsStatus = Schema.Struct({
  orders: Schema.Struct({ rows: Schema.Number, events: Schema.Number, rebuild: RebuildStatus }),
  stats: Schema.Struct({ lagEvents: Schema.Number })
})

export class RebuildAlreadyRunning extends Schema.TaggedError<RebuildAlreadyRunning>()("RebuildAlreadyRunning", {
  message: Schema.String
}, HttpApiSchema.annotations({ status: 409 })) {}

export class AdminProjectionsGroup extends HttpApiGroup.make("adminProjections").annotateContext(OpenApi.annotations({ description: "Operator API for the projections (bearer token)." }))
  .add(
    HttpApiEndpoint.post("rebuildOrders", "/admin/projections/orders/rebuild").annotateContext(doc("Rebuild the orders projection", "Starts a rebuild of `orders` from the event log in the background (202); 409 while one runs.")).setUrlParams(NoParams)
      .addSuccess(RebuildStatus, { status: 202 })
      .addError(RebuildAlreadyRunning)
  )
  .add(HttpApiEndpoint.get("projectionsStatus", "/admin/projections").annotateContext(doc("Projections status", "Rows and events of `orders`, the rebuild's progress or last result, and the stats projection's lag.")).setUrlParams(NoParams).addSuccess(ProjectionsStatus))
  .middleware(AdminAuth)
{}

export class StatsGroup extends HttpApiGroup.make("stats").annotateContext(OpenApi.annotations({ description: "Read-only statistics from the asynchronous stats projection." }))
  .add(
    HttpApiEndpoint.get("revenue", "/stats/revenue").annotateContext(doc("Revenue per day", "Paid revenue per currency and day, from the asynchronous stats projection.")).setUrlParams(NoParams).addSuccess(Schema.Array(Schema.Struct({
      currency: Schema.String,
      day: Schema.String,
      paidOrders: Schema.Number,
      revenue: Schema.String
    })))
  )
  .add(HttpApiEndpoint.get("ordersByState", "/stats/orders-by-state").annotateContext(doc("Orders per state", "Number of orders in each state, from the asynchronous stats projection.")).setUrlParams(NoParams).addSuccess(Schema.Record({ key: Schema.String, value: Schema.Number })))
{}

export class MetricsGroup extends HttpApiGroup.make("metrics").annotateContext(OpenApi.annotations({ description: "Metrics for Prometheus." }))
  .add(HttpApiEndpoint.get("metrics", "/metrics").annotateContext(doc("Prometheus metrics", "Every metric of the process in the Prometheus text exposition format.")).setUrlParams(NoParams).addSuccess(HttpApiSchema.Text()))
{}

export class Api extends HttpApi.make("orders-es").annotateContext(OpenApi.annotations({
  title: "orders-es",
  version: "0.1.0",
  description: "Event-sourced orders and payments: place an order, follow it to PAID or FAILED. Errors are JSON " +
    "with a `_tag` and a `message`; every response carries `X-Request-Id`.",
  servers: [{ url: "http://127.0.0.1:3000", description: "local development (npm start)" }],
  // a private project with no license file: an SPDX LicenseRef (OpenAPI 3.1 `identifier`) says so without a URL
  transform: (spec) => ({ ...spec, info: { ...spec.info, license: { name: "Proprietary", identifier: "LicenseRef-Proprietary" } } })
})).add(OrdersGroup).add(HealthGroup).add(AdminGroup).add(AdminProjectionsGroup).add(StatsGroup)
  .add(MetricsGroup)
  // answered by the failure middleware (src/http/Failures.ts) for any endpoint; declared here for the document
  .addError(ServiceUnavailable)
  .addError(InternalError)
{}
