/**
 * The order decider: `decide(command, state)` and `evolve(state, event)`, pure and total.
 *
 * Transitions: (none) → CREATED → PAYMENT_PENDING → PAID | FAILED, CREATED → CANCELLED, and
 * PAID → PARTIALLY_REFUNDED → REFUNDED (or PAID → REFUNDED).
 * A command that is already satisfied (PlaceOrder of the same order, StartPayment for the pending payment,
 * the same payment result again, Cancel of a cancelled order) yields no events and no rejection.
 *
 * SchedulePaymentRetry records a failed attempt of the pending payment (the order stays PAYMENT_PENDING); once
 * that payment is settled it is satisfied already (a scheduler racing the result appends nothing).
 *
 * Cancelling while PAYMENT_PENDING is rejected: the charge may already be under way at the provider, and a
 * cancelled-but-charged order is worse for the customer than a refused cancel. The client may cancel a
 * CREATED order; once a payment has started, the payment result decides.
 *
 * Refunds (Stripe's rules): a PAID or PARTIALLY_REFUNDED order takes RequestRefund for an amount in its
 * currency, above zero and at most what is left — the charge less what was refunded *and what is pending*, so
 * concurrent requests can never together exceed the charge. RefundSucceeded moves the order to
 * PARTIALLY_REFUNDED, or REFUNDED once nothing is left; RefundFailed gives the amount back to what is left. The
 * same refund id asked for again with the same amount and reason is satisfied already (an Idempotency-Key
 * retried); with another, refused. The payment's commands stay satisfied on a refunded order.
 */
import { Either, Match } from "effect"
import {
  IllegalTransition,
  type Order,
  OrderAlreadyExists,
  OrderCancelled,
  type OrderCommand,
  type OrderEvent,
  OrderFailed,
  OrderNotFound,
  OrderPaid,
  OrderPlaced,
  type OrderState,
  PaymentRequested,
  PaymentRetryScheduled,
  isPaid,
  type Refund,
  RefundFailed,
  refundable,
  RefundRefused,
  RefundRequested,
  RefundRetryScheduled,
  RefundSucceeded,
  type Rejection
} from "./Order.js"

export type Decision = Either.Either<ReadonlyArray<OrderEvent>, Rejection>

/** Events are made of a command's fields, which that command's construction validated already: checking them
 * again cost ~30 µs per event (Schema class validation), a tenth of an order's CPU on the API path. Fields are
 * given in the schema's order, so an event is the same object, key for key, as the one decoded from the log. */
const valid = { disableValidation: true } as const

const none: Decision = Either.right([])
const emit = (event: OrderEvent): Decision => Either.right([event])
const illegal = (order: Order, command: OrderCommand, why: string): Decision =>
  Either.left(
    new IllegalTransition({
      orderId: order.orderId,
      status: order.status,
      command: command._tag,
      message: `${command._tag} is not allowed on a ${order.status} order: ${why}`
    })
  )

export const decide = (command: OrderCommand, state: OrderState): Decision => {
  if (command._tag === "PlaceOrder") {
    if (state === undefined) {
      return emit(
        new OrderPlaced({
          eventId: command.commandId,
          orderId: command.orderId,
          userId: command.userId,
          amount: command.amount,
          occurredAt: command.at
        }, valid)
      )
    }
    const same = state.userId === command.userId && state.amount.minor === command.amount.minor &&
      state.amount.currency === command.amount.currency
    return same ? none : Either.left(
      new OrderAlreadyExists({ orderId: command.orderId, message: `order ${command.orderId} already exists` })
    )
  }
  if (state === undefined) {
    return Either.left(new OrderNotFound({ orderId: command.orderId, message: `order ${command.orderId} not found` }))
  }
  const { at: occurredAt, commandId: eventId, orderId } = command
  switch (command._tag) {
    case "StartPayment":
      if (state.status === "CREATED") return emit(new PaymentRequested({ eventId, orderId, paymentId: command.paymentId, occurredAt }, valid))
      if (state.status === "PAYMENT_PENDING" && state.paymentId === command.paymentId) return none
      return illegal(state, command, "a payment can only start on a CREATED order")
    case "SchedulePaymentRetry":
      if (state.paymentId !== command.paymentId) return illegal(state, command, "not the order's payment")
      if (state.status === "PAYMENT_PENDING") {
        const { attempt, dueAt, error, paymentId } = command
        return emit(new PaymentRetryScheduled({ eventId, orderId, paymentId, attempt, dueAt, error, occurredAt }, valid))
      }
      if (isPaid(state.status) || state.status === "FAILED") return none
      return illegal(state, command, "only a pending payment can be retried")
    case "RecordPaymentSucceeded":
      if (state.status === "PAYMENT_PENDING" && state.paymentId === command.paymentId) {
        return emit(new OrderPaid({ eventId, orderId, paymentId: command.paymentId, occurredAt }, valid))
      }
      if (isPaid(state.status) && state.paymentId === command.paymentId) return none
      return illegal(state, command, "only the pending payment of the order can succeed")
    case "RecordPaymentFailed":
      if (state.status === "PAYMENT_PENDING" && state.paymentId === command.paymentId) {
        return emit(new OrderFailed({ eventId, orderId, paymentId: command.paymentId, reason: command.reason, occurredAt }, valid))
      }
      if (state.status === "FAILED" && state.paymentId === command.paymentId) return none
      return illegal(state, command, "only the pending payment of the order can fail")
    case "CancelOrder":
      if (state.status === "CREATED") return emit(new OrderCancelled({ eventId, orderId, reason: command.reason, occurredAt }, valid))
      if (state.status === "CANCELLED") return none
      return illegal(
        state,
        command,
        state.status === "PAYMENT_PENDING" ? "a payment is in progress" : "the order is already settled"
      )
    case "RequestRefund": {
      const { amount, reason, refundId } = command
      const known = state.refunds.find((r) => r.refundId === refundId)
      if (known !== undefined) {
        const same = known.amount.minor === amount.minor && known.amount.currency === amount.currency && known.reason === reason
        return same ? none : refused(state, "refund_id", `refund ${refundId} was asked for already with another amount or reason`)
      }
      if (!isPaid(state.status) || state.status === "REFUNDED") {
        return illegal(state, command, state.status === "REFUNDED" ? "the order is refunded in full" : "only a paid order can be refunded")
      }
      if (amount.currency !== state.amount.currency) {
        return refused(state, "currency", `the order was paid in ${state.amount.currency}, not ${amount.currency}`)
      }
      if (amount.minor <= 0n) return refused(state, "amount", "a refund must be above zero")
      const left = refundable(state)
      if (amount.minor > left) {
        return refused(state, "amount", `at most ${left} minor units of ${state.amount.currency} are left to refund (counting pending refunds)`)
      }
      return emit(new RefundRequested({ eventId, orderId, refundId, amount, reason, occurredAt }, valid))
    }
    case "ScheduleRefundRetry": {
      const refund = refundOf(state, command.refundId)
      if (refund === undefined) return illegal(state, command, "no such refund")
      // settled, or a pass that knew fewer attempts than the refund has (a path working from an older state)
      if (refund.status !== "pending" || command.attempt < refund.attempt) return none
      const { attempt, dueAt, error, refundId } = command
      return emit(new RefundRetryScheduled({ eventId, orderId, refundId, attempt, dueAt, error, occurredAt }, valid))
    }
    case "RecordRefundSucceeded": {
      const refund = refundOf(state, command.refundId)
      if (refund?.status === "pending") {
        return emit(new RefundSucceeded({ eventId, orderId, refundId: refund.refundId, amount: refund.amount, occurredAt }, valid))
      }
      if (refund?.status === "succeeded") return none
      return illegal(state, command, "only a pending refund can succeed")
    }
    case "RecordRefundFailed": {
      const refund = refundOf(state, command.refundId)
      if (refund?.status === "pending") {
        return emit(new RefundFailed({ eventId, orderId, refundId: refund.refundId, reason: command.reason, occurredAt }, valid))
      }
      if (refund?.status === "failed") return none
      return illegal(state, command, "only a pending refund can fail")
    }
  }
}

const refundOf = (order: Order, refundId: string): Refund | undefined => order.refunds.find((r) => r.refundId === refundId)

const refused = (order: Order, code: RefundRefused["code"], message: string): Decision =>
  Either.left(new RefundRefused({ orderId: order.orderId, code, message }))

/** The order with one refund changed. */
const refundMoved = (order: Order, refundId: string, at: Date, change: Partial<Refund>, orderChange: Partial<Order> = {}): Order =>
  moved(order, at, {
    ...orderChange,
    refunds: order.refunds.map((r) => r.refundId === refundId ? { ...r, ...change, updatedAt: at } : r)
  })

const moved = (order: Order, at: Date, change: Partial<Order>): Order => ({
  ...order,
  ...change,
  version: order.version + 1,
  updatedAt: at
})

const apply = Match.type<OrderEvent>().pipe(
  Match.withReturnType<(order: Order) => Order>(),
  Match.tagsExhaustive({
    OrderPlaced: () => (order) => order,
    PaymentRequested: (e) => (order) => moved(order, e.occurredAt, { status: "PAYMENT_PENDING", paymentId: e.paymentId }),
    PaymentRetryScheduled: (e) => (order) => moved(order, e.occurredAt, {}),
    OrderPaid: (e) => (order) => moved(order, e.occurredAt, { status: "PAID" }),
    OrderFailed: (e) => (order) => moved(order, e.occurredAt, { status: "FAILED", reason: e.reason }),
    OrderCancelled: (e) => (order) => moved(order, e.occurredAt, { status: "CANCELLED", reason: e.reason }),
    RefundRequested: (e) => (order) =>
      moved(order, e.occurredAt, {
        refunds: [...order.refunds, {
          refundId: e.refundId,
          amount: e.amount,
          reason: e.reason,
          status: "pending",
          failure: null,
          attempt: 0,
          dueAt: null,
          parked: false,
          requestedAt: e.occurredAt,
          updatedAt: e.occurredAt
        }]
      }),
    RefundRetryScheduled: (e) => (order) =>
      refundMoved(order, e.refundId, e.occurredAt, { attempt: e.attempt, dueAt: e.dueAt, parked: e.dueAt === null }),
    RefundSucceeded: (e) => (order) => {
      const refunded = order.refunded + e.amount.minor
      return refundMoved(order, e.refundId, e.occurredAt, { status: "succeeded", dueAt: null, parked: false }, {
        refunded,
        status: refunded >= order.amount.minor ? "REFUNDED" : "PARTIALLY_REFUNDED"
      })
    },
    RefundFailed: (e) => (order) =>
      refundMoved(order, e.refundId, e.occurredAt, { status: "failed", failure: e.reason, dueAt: null, parked: false })
  })
)

/**
 * Fold one event into the state. Total: every (state, event) pair has a result. The log only holds events
 * `decide` emitted; an event no legal history has there (anything before OrderPlaced, a second OrderPlaced)
 * is ignored rather than thrown on.
 */
export const evolve = (state: OrderState, event: OrderEvent): OrderState => {
  if (event._tag === "OrderPlaced") {
    return state ?? {
      orderId: event.orderId,
      userId: event.userId,
      amount: event.amount,
      status: "CREATED",
      paymentId: null,
      reason: null,
      version: 1,
      createdAt: event.occurredAt,
      updatedAt: event.occurredAt,
      refunded: 0n,
      refunds: []
    }
  }
  return state === undefined ? state : apply(event)(state)
}

export const fold = (events: Iterable<OrderEvent>, from: OrderState = undefined): OrderState => {
  let state = from
  for (const event of events) state = evolve(state, event)
  return state
}
