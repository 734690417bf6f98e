/**
 * The orders feature's part of the HTTP API: its endpoints, payloads, response shapes and the status of every
 * error a client can cause here (400 unreadable; 422 readable but refused; 404 no such order; 409 the order's
 * state forbids it or the Idempotency-Key's first request still runs; 503 too many watchers).
 */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { InvalidAmount } from "../domain/Money.js"
import {
  IllegalTransition,
  isLowerCaseUuid,
  OrderAlreadyExists,
  OrderId,
  OrderNotFound,
  OrderStatus,
  RefundId,
  RefundRefused,
  RefundStatus,
  UserId
} from "../domain/Order.js"
import { BadRequest, PayloadTooLarge, RequestTimeout, UnsupportedMediaType } from "../http/Errors.js"
import { type ErrorExample, errorExample } from "../http/ErrorExamples.js"
import { doc, NoParams, StorableText, strict } from "../http/Spec.js"

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

/** Body of POST /orders. Unknown fields are an error, not ignored. */
export const PlaceOrderBody = Schema.Struct({
  userId: UserId,
  amount: Schema.String.annotations({ description: "decimal string, e.g. \"299.99\"", examples: ["299.99"] }),
  currency: Schema.String.annotations({ description: "ISO-4217 code", examples: ["EUR"] })
}).annotations({ parseOptions: { onExcessProperty: "error" } })
export type PlaceOrderBody = typeof PlaceOrderBody.Type

/**
 * PlaceOrderBody's decoding of the body nearly every POST /orders sends — exactly `userId`, `amount` and
 * `currency`, strings, the user id a UUID — in plain code (~0.2 µs, against the schema's ~4.5 µs on the api
 * role's hottest path); `undefined` for anything else, which is the schema's to decode or refuse with its
 * message. property-tests/p7-p8-schemas-money.test.ts holds the two to the same answer.
 */
export const decodePlaceOrderBodyFast = (json: unknown): PlaceOrderBody | undefined => {
  // a plain object (what JSON.parse makes) with exactly these own keys: the schema's excess-property check counts
  // every own key (Reflect.ownKeys), symbols and non-enumerable ones included
  if (typeof json !== "object" || json === null || Object.getPrototypeOf(json) !== Object.prototype) return undefined
  const body = json as Record<string, unknown>
  if (Reflect.ownKeys(body).length !== 3 || !Object.hasOwn(body, "userId") || !Object.hasOwn(body, "amount") || !Object.hasOwn(body, "currency")) {
    return undefined
  }
  const { amount, currency, userId } = body
  if (typeof userId !== "string" || typeof amount !== "string" || typeof currency !== "string") return undefined
  const lower = userId.toLowerCase()
  return isLowerCaseUuid(lower) ? { userId: lower as PlaceOrderBody["userId"], amount, currency } : undefined
}

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
  refundedAmount: Schema.String.annotations({ description: "what was refunded so far, a decimal string in the order's currency" }),
  createdAt: Schema.String,
  updatedAt: Schema.String
})
export type OrderView = typeof OrderView.Type

/** No refund with this id on this order. */
export class RefundNotFound extends Schema.TaggedError<RefundNotFound>()("RefundNotFound", {
  orderId: Schema.String,
  refundId: Schema.String,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 404 })) {}

/** Body of POST /orders/:orderId/refunds. Unknown fields are an error, not ignored. */
export const RefundBody = Schema.Struct({
  amount: Schema.String.annotations({ description: "decimal string in the order's currency, e.g. \"50.00\"", examples: ["50.00"] }),
  currency: Schema.optional(Schema.String.annotations({ description: "ISO-4217 code; the order's currency when omitted", examples: ["EUR"] })),
  // what PostgreSQL's jsonb cannot hold (a NUL, a lone surrogate) is refused here, never a 500 at the append
  reason: Schema.optional(StorableText("reason").pipe(Schema.maxLength(500)))
}).annotations({ parseOptions: { onExcessProperty: "error" } })
export type RefundBody = typeof RefundBody.Type

export const RefundView = Schema.Struct({
  refundId: Schema.String,
  orderId: Schema.String,
  amount: Schema.String,
  currency: Schema.String,
  reason: Schema.NullOr(Schema.String),
  status: RefundStatus,
  failure: Schema.NullOr(Schema.String),
  attempts: Schema.Int.annotations({ description: "provider calls that failed so far (retried durably)" }),
  parked: Schema.Boolean.annotations({ description: "attempts exhausted: left for an operator (dead letter)" }),
  requestedAt: Schema.String,
  updatedAt: Schema.String
})
export type RefundView = typeof RefundView.Type

export const RefundList = Schema.Struct({ items: Schema.Array(RefundView) })

export const OrderPage = Schema.Struct({
  items: Schema.Array(OrderView),
  nextCursor: Schema.NullOr(Schema.String)
})
export type OrderPage = typeof OrderPage.Type

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
const RefundPath = Schema.Struct({ orderId: OrderId, refundId: RefundId })

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

export class OrdersApi extends HttpApiGroup.make("orders").annotateContext(OpenApi.annotations({ description: "Place, read, watch and cancel orders." }))
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
  .add(
    HttpApiEndpoint.post("refund", "/orders/:orderId/refunds").annotateContext(doc("Refund (part of) an order", "A PAID or PARTIALLY_REFUNDED order can be refunded, in parts, never above what was charged: the amount must be at most what is left *counting refunds still pending* (422 otherwise), in the order's currency. Answered 202 with the refund `pending`; the payment worker asks the provider and the refund ends `succeeded` (the order becomes PARTIALLY_REFUNDED, or REFUNDED once nothing is left) or `failed` (its amount is refundable again). With an `Idempotency-Key` header the same key and body on the same order get the first answer again (`Idempotent-Replayed: true`) and refund nothing more; the key with another body is a 422. A refund of an order that is not paid, or is refunded in full, is a 409."))
      .setPath(OrderPath)
      .setPayload(RefundBody)
      .setUrlParams(NoParams)
      .setHeaders(Schema.Struct({ "idempotency-key": Schema.optional(IdempotencyKey) }))
      .addSuccess(RefundView, { status: 202 })
      .addError(BadRequest)
      .addError(InvalidAmount, { status: 422 })
      .addError(RefundRefused, { status: 422 })
      .addError(IdempotencyKeyMismatch)
      .addError(OrderNotFound, { status: 404 })
      .addError(IllegalTransition, { status: 409 })
      .addError(OrderBusy)
      .addError(PayloadTooLarge)
      .addError(UnsupportedMediaType)
      .addError(RequestTimeout)
  )
  .add(
    HttpApiEndpoint.get("refunds", "/orders/:orderId/refunds").annotateContext(doc("List the refunds of an order", "Every refund asked for, in request order, from the `orders` projection."))
      .setPath(OrderPath)
      .setUrlParams(NoParams)
      .addSuccess(RefundList)
      .addError(OrderNotFound, { status: 404 })
  )
  .add(
    HttpApiEndpoint.get("getRefund", "/orders/:orderId/refunds/:refundId").annotateContext(doc("Get a refund", "One refund of the order, from the `orders` projection."))
      .setPath(RefundPath)
      .setUrlParams(NoParams)
      .addSuccess(RefundView)
      .addError(OrderNotFound, { status: 404 })
      .addError(RefundNotFound)
  )
{}

const orderId = "0196b3f0-6a5c-7c3e-8f21-4d5e6f708192"

export const ordersErrorExamples: ReadonlyArray<ErrorExample> = [
  errorExample(InvalidAmount, new InvalidAmount({ amount: "10.123", currency: "EUR", message: "EUR allows at most 2 decimals" }), "the amount breaks the money rules"),
  errorExample(IdempotencyKeyMismatch, new IdempotencyKeyMismatch({ message: "this Idempotency-Key was used with a different request" }), "the key was used with another body"),
  errorExample(IdempotencyKeyInUse, new IdempotencyKeyInUse({ message: "a request with this Idempotency-Key is still in progress; retry later" }), "the key's first request still runs"),
  errorExample(OrderAlreadyExists, new OrderAlreadyExists({ orderId, message: `order ${orderId} already exists` }), "the order id is taken"),
  errorExample(OrderBusy, new OrderBusy({ orderId, message: "the order kept changing under this request; retry it" }), "other writers kept changing the order: retry"),
  errorExample(OrderNotFound, new OrderNotFound({ orderId, message: `order ${orderId} not found` }), "no such order"),
  errorExample(OrderVersionNotFound, new OrderVersionNotFound({
    orderId,
    version: 5,
    currentVersion: 3,
    message: `order ${orderId} is at version 3; it has no version 5 yet`
  }), "atVersion beyond the current version"),
  errorExample(TooManyWatchers, new TooManyWatchers({
    message: "this process already serves 1000 watch streams; retry later or poll GET /orders/{orderId}"
  }), "WATCH_MAX_CONNECTIONS reached"),
  errorExample(RefundRefused, new RefundRefused({
    orderId,
    code: "amount",
    message: "at most 2500 minor units of EUR are left to refund (counting pending refunds)"
  }), "the refund is above what is left, or in another currency"),
  errorExample(RefundNotFound, new RefundNotFound({
    orderId,
    refundId: "0196b3f0-6a5c-5c3e-8f21-4d5e6f708193",
    message: "order has no refund 0196b3f0-6a5c-5c3e-8f21-4d5e6f708193"
  }), "no such refund"),
  errorExample(IllegalTransition, new IllegalTransition({
    orderId,
    status: "PAID",
    command: "CancelOrder",
    message: "CancelOrder is not allowed on a PAID order: the order is already settled"
  }), "the order's state forbids the command")
]
