/** How orders and recorded events look in the API and the CLI: the response shapes of the orders API. */
import { formatMoney } from "../domain/Money.js"
import type { Order } from "../domain/Order.js"
import { encodeEvent } from "../eventstore/EventCodec.js"
import type { RecordedEvent } from "../eventstore/EventStore.js"
import type { EventView, OrderView } from "./Api.js"

export const toView = (order: Order): OrderView => ({
  orderId: order.orderId,
  userId: order.userId,
  amount: formatMoney(order.amount),
  currency: order.amount.currency,
  state: order.status,
  version: order.version,
  paymentId: order.paymentId,
  reason: order.reason,
  createdAt: order.createdAt.toISOString(),
  updatedAt: order.updatedAt.toISOString()
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
