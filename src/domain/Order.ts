/**
 * The order domain as values: ids, commands, events, state and rejections. Pure: no I/O, no clock.
 * Every event carries its own id (the id of the command that caused it, so a retried command is an
 * idempotent append), the order id, and the time it happened, passed in by the caller.
 */
import { Schema } from "effect"
import { Money } from "./Money.js"

/** A UUID in canonical lower case (PostgreSQL's uuid type lower-cases, so the fold and the projection agree). */
const Uuid = Schema.compose(Schema.Lowercase, Schema.UUID, { strict: false })

/** Text `Uuid` accepts as it is: Schema.UUID's pattern in lower case (the plain-code decoders' and encoders' check). */
export const isLowerCaseUuid = (text: string): boolean =>
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(text)

export const OrderId = Uuid.pipe(Schema.brand("OrderId"))
export type OrderId = typeof OrderId.Type
export const UserId = Uuid.pipe(Schema.brand("UserId"))
export type UserId = typeof UserId.Type
export const EventId = Uuid.pipe(Schema.brand("EventId"))
export type EventId = typeof EventId.Type
export const CommandId = EventId
export const PaymentId = Uuid.pipe(Schema.brand("PaymentId"))
export type PaymentId = typeof PaymentId.Type
/** A refund's id: also its idempotency key at the provider. */
export const RefundId = Uuid.pipe(Schema.brand("RefundId"))
export type RefundId = typeof RefundId.Type

export const OrderStatus = Schema.Literal(
  "CREATED",
  "PAYMENT_PENDING",
  "PAID",
  "FAILED",
  "CANCELLED",
  "PARTIALLY_REFUNDED",
  "REFUNDED"
)
export type OrderStatus = typeof OrderStatus.Type

/** The states of a paid order: money was taken (some of it may have gone back). */
export const isPaid = (status: OrderStatus | undefined): boolean =>
  status === "PAID" || status === "PARTIALLY_REFUNDED" || status === "REFUNDED"

export const RefundStatus = Schema.Literal("pending", "succeeded", "failed")
export type RefundStatus = typeof RefundStatus.Type

/** The longest reason or error text an event keeps. */
export const REASON_MAX_LENGTH = 500
export const Reason = Schema.String.pipe(Schema.maxLength(REASON_MAX_LENGTH))
export const NullableReason = Schema.NullOr(Reason)
/** Provider calls that failed so far (a retry's count). */
export const Attempt = Schema.Int.pipe(Schema.nonNegative())
/** When the next retry is due; null: the attempts are exhausted (parked). */
export const DueAt = Schema.NullOr(Schema.Date)

// ---- events (past tense). Schema versions and upcasters live in eventstore/EventCodec.ts ----

export class OrderPlaced extends Schema.TaggedClass<OrderPlaced>()("OrderPlaced", {
  eventId: EventId,
  orderId: OrderId,
  userId: UserId,
  amount: Money,
  occurredAt: Schema.Date
}) {}

export class PaymentRequested extends Schema.TaggedClass<PaymentRequested>()("PaymentRequested", {
  eventId: EventId,
  orderId: OrderId,
  paymentId: PaymentId,
  occurredAt: Schema.Date
}) {}

export class OrderPaid extends Schema.TaggedClass<OrderPaid>()("OrderPaid", {
  eventId: EventId,
  orderId: OrderId,
  paymentId: PaymentId,
  occurredAt: Schema.Date
}) {}

export class OrderFailed extends Schema.TaggedClass<OrderFailed>()("OrderFailed", {
  eventId: EventId,
  orderId: OrderId,
  paymentId: PaymentId,
  reason: Reason,
  occurredAt: Schema.Date
}) {}

/**
 * A payment attempt failed transiently and the next one is due at `dueAt` (durable retry, re-driven by the
 * payment scheduler); `dueAt` null: the attempts are exhausted and the payment is parked for an operator.
 * `attempt` counts provider calls that failed so far for this payment (a wait on the open breaker is none).
 */
export class PaymentRetryScheduled extends Schema.TaggedClass<PaymentRetryScheduled>()("PaymentRetryScheduled", {
  eventId: EventId,
  orderId: OrderId,
  paymentId: PaymentId,
  attempt: Attempt,
  dueAt: DueAt,
  error: Reason,
  occurredAt: Schema.Date
}) {}

export class OrderCancelled extends Schema.TaggedClass<OrderCancelled>()("OrderCancelled", {
  eventId: EventId,
  orderId: OrderId,
  reason: Reason,
  occurredAt: Schema.Date
}) {}

/** A refund of (part of) a paid order was asked for; the worker asks the provider (key: the refund id). */
export class RefundRequested extends Schema.TaggedClass<RefundRequested>()("RefundRequested", {
  eventId: EventId,
  orderId: OrderId,
  refundId: RefundId,
  amount: Money,
  reason: NullableReason,
  occurredAt: Schema.Date
}) {}

/** A refund call failed transiently: the next one is due at `dueAt`; null: attempts exhausted, parked. */
export class RefundRetryScheduled extends Schema.TaggedClass<RefundRetryScheduled>()("RefundRetryScheduled", {
  eventId: EventId,
  orderId: OrderId,
  refundId: RefundId,
  attempt: Attempt,
  dueAt: DueAt,
  error: Reason,
  occurredAt: Schema.Date
}) {}

/** The provider refunded `amount` (the refund's, repeated so that projections need no state). */
export class RefundSucceeded extends Schema.TaggedClass<RefundSucceeded>()("RefundSucceeded", {
  eventId: EventId,
  orderId: OrderId,
  refundId: RefundId,
  amount: Money,
  occurredAt: Schema.Date
}) {}

/** The provider refused the refund: its amount is refundable again. */
export class RefundFailed extends Schema.TaggedClass<RefundFailed>()("RefundFailed", {
  eventId: EventId,
  orderId: OrderId,
  refundId: RefundId,
  reason: Reason,
  occurredAt: Schema.Date
}) {}

export const OrderEvent = Schema.Union(
  OrderPlaced,
  PaymentRequested,
  PaymentRetryScheduled,
  OrderPaid,
  OrderFailed,
  OrderCancelled,
  RefundRequested,
  RefundRetryScheduled,
  RefundSucceeded,
  RefundFailed
)
export type OrderEvent = typeof OrderEvent.Type
export type OrderEventType = OrderEvent["_tag"]

// ---- commands ----

export class PlaceOrder extends Schema.TaggedClass<PlaceOrder>()("PlaceOrder", {
  commandId: CommandId,
  orderId: OrderId,
  userId: UserId,
  amount: Money,
  at: Schema.Date
}) {}

export class StartPayment extends Schema.TaggedClass<StartPayment>()("StartPayment", {
  commandId: CommandId,
  orderId: OrderId,
  paymentId: PaymentId,
  at: Schema.Date
}) {}

export class RecordPaymentSucceeded extends Schema.TaggedClass<RecordPaymentSucceeded>()("RecordPaymentSucceeded", {
  commandId: CommandId,
  orderId: OrderId,
  paymentId: PaymentId,
  at: Schema.Date
}) {}

export class RecordPaymentFailed extends Schema.TaggedClass<RecordPaymentFailed>()("RecordPaymentFailed", {
  commandId: CommandId,
  orderId: OrderId,
  paymentId: PaymentId,
  reason: Reason,
  at: Schema.Date
}) {}

export class SchedulePaymentRetry extends Schema.TaggedClass<SchedulePaymentRetry>()("SchedulePaymentRetry", {
  commandId: CommandId,
  orderId: OrderId,
  paymentId: PaymentId,
  attempt: Attempt,
  dueAt: DueAt,
  error: Reason,
  at: Schema.Date
}) {}

export class CancelOrder extends Schema.TaggedClass<CancelOrder>()("CancelOrder", {
  commandId: CommandId,
  orderId: OrderId,
  reason: Reason,
  at: Schema.Date
}) {}

export class RequestRefund extends Schema.TaggedClass<RequestRefund>()("RequestRefund", {
  commandId: CommandId,
  orderId: OrderId,
  refundId: RefundId,
  amount: Money,
  reason: NullableReason,
  at: Schema.Date
}) {}

export class ScheduleRefundRetry extends Schema.TaggedClass<ScheduleRefundRetry>()("ScheduleRefundRetry", {
  commandId: CommandId,
  orderId: OrderId,
  refundId: RefundId,
  attempt: Attempt,
  dueAt: DueAt,
  error: Reason,
  at: Schema.Date
}) {}

export class RecordRefundSucceeded extends Schema.TaggedClass<RecordRefundSucceeded>()("RecordRefundSucceeded", {
  commandId: CommandId,
  orderId: OrderId,
  refundId: RefundId,
  at: Schema.Date
}) {}

export class RecordRefundFailed extends Schema.TaggedClass<RecordRefundFailed>()("RecordRefundFailed", {
  commandId: CommandId,
  orderId: OrderId,
  refundId: RefundId,
  reason: Reason,
  at: Schema.Date
}) {}

export const OrderCommand = Schema.Union(
  PlaceOrder,
  StartPayment,
  SchedulePaymentRetry,
  RecordPaymentSucceeded,
  RecordPaymentFailed,
  CancelOrder,
  RequestRefund,
  ScheduleRefundRetry,
  RecordRefundSucceeded,
  RecordRefundFailed
)
export type OrderCommand = typeof OrderCommand.Type

// ---- state ----

/** One refund of an order, as its events left it. `attempt`: provider calls that failed so far; `dueAt`: the
 * next call's time while pending (null: none scheduled — not tried yet, or parked when `parked`). */
export interface Refund {
  readonly refundId: RefundId
  readonly amount: Money
  readonly reason: string | null
  readonly status: RefundStatus
  readonly failure: string | null
  readonly attempt: number
  readonly dueAt: Date | null
  readonly parked: boolean
  readonly requestedAt: Date
  readonly updatedAt: Date
}

/** The state of one order: `undefined` before its first event. `version` = number of events folded. */
export interface Order {
  readonly orderId: OrderId
  readonly userId: UserId
  readonly amount: Money
  readonly status: OrderStatus
  readonly paymentId: PaymentId | null
  readonly reason: string | null
  readonly version: number
  readonly createdAt: Date
  readonly updatedAt: Date
  /** Minor units refunded (succeeded refunds). */
  readonly refunded: bigint
  /** Every refund asked for, in request order. */
  readonly refunds: ReadonlyArray<Refund>
}
export type OrderState = Order | undefined

export const versionOf = (state: OrderState): number => state?.version ?? 0

/** Minor units of refunds asked for and not settled yet. */
export const refundsPending = (order: Order): bigint =>
  order.refunds.reduce((sum, r) => r.status === "pending" ? sum + r.amount.minor : sum, 0n)

/** Minor units that may still be refunded: the charge less what was refunded and what is pending. */
export const refundable = (order: Order): bigint =>
  isPaid(order.status) ? order.amount.minor - order.refunded - refundsPending(order) : 0n

// ---- rejections (a rejected command leaves no event) ----

export class OrderNotFound extends Schema.TaggedError<OrderNotFound>()("OrderNotFound", {
  orderId: Schema.String,
  message: Schema.String
}) {}

export class OrderAlreadyExists extends Schema.TaggedError<OrderAlreadyExists>()("OrderAlreadyExists", {
  orderId: Schema.String,
  message: Schema.String
}) {}

export class IllegalTransition extends Schema.TaggedError<IllegalTransition>()("IllegalTransition", {
  orderId: Schema.String,
  status: OrderStatus,
  command: Schema.String,
  message: Schema.String
}) {}

/**
 * A refund the order cannot take: `amount` (not above zero, or above what is left counting pending refunds),
 * `currency` (not the order's), or `refund_id` (the refund id was asked for already with another amount or
 * reason — at the edge, an Idempotency-Key reused with another body).
 */
export class RefundRefused extends Schema.TaggedError<RefundRefused>()("RefundRefused", {
  orderId: Schema.String,
  code: Schema.Literal("amount", "currency", "refund_id"),
  message: Schema.String
}) {}

export type Rejection = OrderNotFound | OrderAlreadyExists | IllegalTransition | RefundRefused

const rejectionTags = new Set(["OrderNotFound", "OrderAlreadyExists", "IllegalTransition", "RefundRefused"])

/** Whether a failure is the domain refusing a command (as opposed to a conflict or an infrastructure failure). */
export const isRejection = (error: unknown): error is Rejection =>
  typeof error === "object" && error !== null && rejectionTags.has((error as { _tag?: unknown })._tag as string)
