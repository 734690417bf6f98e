/**
 * The HTTP API as a spec (@effect/platform HttpApi): endpoints, payloads, responses, and the status of every
 * error a client can cause. Status codes are declared here, never in the domain.
 *
 * 400 the request cannot be read (not JSON, missing/unknown/mistyped fields, malformed ids or headers);
 * 422 it can be read but its values are refused (amount or currency rules; Idempotency-Key reused with
 * another body); 404 no such order; 409 the order's state forbids it, or the Idempotency-Key's first request
 * is still running; 413 body over the limit; 415 body not application/json.
 */
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, HttpApiSchema, HttpApiSecurity } from "@effect/platform"
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

export class NotReady extends Schema.TaggedError<NotReady>()("NotReady", {
  message: Schema.String
}, HttpApiSchema.annotations({ status: 503 })) {}

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

export const ListParams = Schema.Struct({
  state: Schema.optional(OrderStatus),
  userId: Schema.optional(UserId),
  limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 100))),
  cursor: Schema.optional(Schema.String)
})

export class OrdersGroup extends HttpApiGroup.make("orders")
  .add(
    HttpApiEndpoint.post("place", "/orders")
      .setPayload(PlaceOrderBody)
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
  )
  .add(
    HttpApiEndpoint.get("list", "/orders")
      .setUrlParams(ListParams)
      .addSuccess(OrderPage)
      .addError(BadRequest)
  )
  .add(
    HttpApiEndpoint.get("get", "/orders/:orderId")
      .setPath(OrderPath)
      .addSuccess(OrderView)
      .addError(OrderNotFound, { status: 404 })
  )
  .add(
    HttpApiEndpoint.get("events", "/orders/:orderId/events")
      .setPath(OrderPath)
      .addSuccess(Schema.Array(EventView))
      .addError(OrderNotFound, { status: 404 })
  )
  .add(
    HttpApiEndpoint.post("cancel", "/orders/:orderId/cancel")
      .setPath(OrderPath)
      .addSuccess(OrderView)
      .addError(OrderNotFound, { status: 404 })
      .addError(IllegalTransition, { status: 409 })
      .addError(OrderBusy)
  )
{}

export class HealthGroup extends HttpApiGroup.make("health")
  .add(HttpApiEndpoint.get("live", "/health/live").addSuccess(Schema.Struct({ status: Schema.Literal("ok") })))
  .add(
    HttpApiEndpoint.get("ready", "/health/ready")
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

export class AdminGroup extends HttpApiGroup.make("admin")
  .add(
    HttpApiEndpoint.get("listDeadLetters", "/admin/dead-letters")
      .setUrlParams(Schema.Struct({
        status: Schema.optional(Schema.Literal("parked", "replayed", "discarded")),
        limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 1000)))
      }))
      .addSuccess(Schema.Array(DeadLetter))
  )
  .add(
    HttpApiEndpoint.get("getDeadLetter", "/admin/dead-letters/:id")
      .setPath(DeadLetterPath)
      .addSuccess(DeadLetter)
      .addError(DeadLetterNotFound)
  )
  .add(
    HttpApiEndpoint.post("replayDeadLetter", "/admin/dead-letters/:id/replay")
      .setPath(DeadLetterPath)
      .addSuccess(DeadLetter)
      .addError(DeadLetterNotFound)
      .addError(DeadLetterNotParked)
  )
  .add(
    HttpApiEndpoint.post("discardDeadLetter", "/admin/dead-letters/:id/discard")
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

export class AdminProjectionsGroup extends HttpApiGroup.make("adminProjections")
  .add(
    HttpApiEndpoint.post("rebuildOrders", "/admin/projections/orders/rebuild")
      .addSuccess(RebuildStatus, { status: 202 })
      .addError(RebuildAlreadyRunning)
  )
  .add(HttpApiEndpoint.get("projectionsStatus", "/admin/projections").addSuccess(ProjectionsStatus))
  .middleware(AdminAuth)
{}

export class StatsGroup extends HttpApiGroup.make("stats")
  .add(
    HttpApiEndpoint.get("revenue", "/stats/revenue").addSuccess(Schema.Array(Schema.Struct({
      currency: Schema.String,
      day: Schema.String,
      paidOrders: Schema.Number,
      revenue: Schema.String
    })))
  )
  .add(HttpApiEndpoint.get("ordersByState", "/stats/orders-by-state").addSuccess(Schema.Record({ key: Schema.String, value: Schema.Number })))
{}

export class MetricsGroup extends HttpApiGroup.make("metrics")
  .add(HttpApiEndpoint.get("metrics", "/metrics").addSuccess(HttpApiSchema.Text()))
{}

export class Api extends HttpApi.make("orders-es").add(OrdersGroup).add(HealthGroup).add(AdminGroup).add(AdminProjectionsGroup).add(StatsGroup)
  .add(MetricsGroup)
{}
