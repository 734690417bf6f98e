/** How orders and recorded events look in the API and the CLI: the response shapes of the orders API. */
import { formatMoney } from "../domain/Money.js"
import { Money } from "../domain/Money.js"
import type { Order, Refund } from "../domain/Order.js"
import { encodeEvent } from "../eventstore/EventCodec.js"
import type { RecordedEvent } from "../eventstore/EventStore.js"
import type { EventView, OrderView, RefundView } from "./Api.js"

export const toView = (order: Order): OrderView => ({
  orderId: order.orderId,
  userId: order.userId,
  amount: formatMoney(order.amount),
  currency: order.amount.currency,
  state: order.status,
  version: order.version,
  paymentId: order.paymentId,
  reason: order.reason,
  refundedAmount: formatMoney(new Money({ minor: order.refunded, currency: order.amount.currency }, { disableValidation: true })),
  createdAt: order.createdAt.toISOString(),
  updatedAt: order.updatedAt.toISOString()
})

export const toRefundView = (order: Order, refund: Refund): RefundView => ({
  refundId: refund.refundId,
  orderId: order.orderId,
  amount: formatMoney(refund.amount),
  currency: refund.amount.currency,
  reason: refund.reason,
  status: refund.status,
  failure: refund.failure,
  attempts: refund.attempt,
  parked: refund.parked,
  requestedAt: refund.requestedAt.toISOString(),
  updatedAt: refund.updatedAt.toISOString()
})

/** The answer a refund request got when it was accepted (what a replay of its Idempotency-Key answers). */
export const acceptedRefundView = (order: Order, refund: Refund): RefundView => ({
  ...toRefundView(order, refund),
  status: "pending",
  failure: null,
  attempts: 0,
  parked: false,
  updatedAt: refund.requestedAt.toISOString()
})

/** A recorded event as the API and the CLI show it: its stored form (encoded data) with its place in the log. */
export const toEventView = (r: RecordedEvent): EventView => ({
  position: r.position.toString(),
  version: r.version,
  eventId: r.event.eventId,
  type: r.event._tag,
  schemaVersion: r.schemaVersion,
  recordedAt: r.recordedAt.toISOString(),
  data: encodeEvent(r.event).data,
  metadata: r.metadata
})
