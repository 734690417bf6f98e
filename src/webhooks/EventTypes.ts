/**
 * The webhook event types (docs/HTTP.md "Webhooks"): which order events a merchant can subscribe to, by name.
 * The scheduling events (a retry's due time) are internal: no webhook.
 */
import type { OrderEventType } from "../domain/Order.js"

export const webhookTypeOf: Readonly<Record<OrderEventType, string | null>> = {
  OrderPlaced: "order.placed",
  PaymentRequested: "order.payment_pending",
  PaymentRetryScheduled: null,
  OrderPaid: "order.paid",
  OrderFailed: "order.failed",
  OrderCancelled: "order.cancelled",
  RefundRequested: "order.refund_requested",
  RefundRetryScheduled: null,
  RefundSucceeded: "order.refund_succeeded",
  RefundFailed: "order.refund_failed"
}

export const webhookEventTypes: ReadonlyArray<string> = Object.values(webhookTypeOf).filter((t): t is string => t !== null)

/** The order event types no webhook is made of (the notifier skips their messages by header). */
export const withoutWebhook: ReadonlySet<string> = new Set(
  Object.entries(webhookTypeOf).filter(([, t]) => t === null).map(([type]) => type)
)
