/**
 * The order domain as values: ids, commands, events, state and rejections. Pure: no I/O, no clock.
 * Every event carries its own id (the id of the command that caused it, so a retried command is an
 * idempotent append), the order id, and the time it happened, passed in by the caller.
 */
import { Schema } from "effect"
import { Money } from "./Money.js"

/** A UUID in canonical lower case (PostgreSQL's uuid type lower-cases, so the fold and the projection agree). */
const Uuid = Schema.compose(Schema.Lowercase, Schema.UUID, { strict: false })

export const OrderId = Uuid.pipe(Schema.brand("OrderId"))
export type OrderId = typeof OrderId.Type
export const UserId = Uuid.pipe(Schema.brand("UserId"))
export type UserId = typeof UserId.Type
export const EventId = Uuid.pipe(Schema.brand("EventId"))
export type EventId = typeof EventId.Type
export const CommandId = EventId
export const PaymentId = Uuid.pipe(Schema.brand("PaymentId"))
export type PaymentId = typeof PaymentId.Type

export const OrderStatus = Schema.Literal("CREATED", "PAYMENT_PENDING", "PAID", "FAILED", "CANCELLED")
export type OrderStatus = typeof OrderStatus.Type

const Reason = Schema.String.pipe(Schema.maxLength(500))

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
  attempt: Schema.Int.pipe(Schema.nonNegative()),
  dueAt: Schema.NullOr(Schema.Date),
  error: Reason,
  occurredAt: Schema.Date
}) {}

export class OrderCancelled extends Schema.TaggedClass<OrderCancelled>()("OrderCancelled", {
  eventId: EventId,
  orderId: OrderId,
  reason: Reason,
  occurredAt: Schema.Date
}) {}

export const OrderEvent = Schema.Union(
  OrderPlaced,
  PaymentRequested,
  PaymentRetryScheduled,
  OrderPaid,
  OrderFailed,
  OrderCancelled
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
  attempt: Schema.Int.pipe(Schema.nonNegative()),
  dueAt: Schema.NullOr(Schema.Date),
  error: Reason,
  at: Schema.Date
}) {}

export class CancelOrder extends Schema.TaggedClass<CancelOrder>()("CancelOrder", {
  commandId: CommandId,
  orderId: OrderId,
  reason: Reason,
  at: Schema.Date
}) {}

export const OrderCommand = Schema.Union(
  PlaceOrder,
  StartPayment,
  SchedulePaymentRetry,
  RecordPaymentSucceeded,
  RecordPaymentFailed,
  CancelOrder
)
export type OrderCommand = typeof OrderCommand.Type

// ---- state ----

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
}
export type OrderState = Order | undefined

export const versionOf = (state: OrderState): number => state?.version ?? 0

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

export type Rejection = OrderNotFound | OrderAlreadyExists | IllegalTransition

const rejectionTags = new Set(["OrderNotFound", "OrderAlreadyExists", "IllegalTransition"])

/** Whether a failure is the domain refusing a command (as opposed to a conflict or an infrastructure failure). */
export const isRejection = (error: unknown): error is Rejection =>
  typeof error === "object" && error !== null && rejectionTags.has((error as { _tag?: unknown })._tag as string)
