/** The notifier's metrics (docs/OPERATIONS.md "Metrics"), on /metrics; created at 0 when the role starts. */
import { Metric, MetricBoundaries } from "effect"

/** outcome: delivered, retry (a failed attempt with another to come), failed (given up), refused (unsafe address,
 * another attempt to come), lease_lost (an attempt that outlived its lease: its outcome not recorded) */
export const webhookDeliveries = Metric.counter("webhook_deliveries_total", {
  description: "webhook delivery attempts by outcome",
  incremental: true
})
export const webhookLatency = Metric.histogram(
  "webhook_delivery_latency_seconds",
  MetricBoundaries.fromIterable([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 36000]),
  "from the event's recording to the endpoint's 2xx"
)
export const webhookBacklog = Metric.gauge("webhook_endpoint_backlog", {
  description: "deliveries pending per endpoint (due or waiting for a retry)"
})
export const webhookEndpointsDisabled = Metric.counter("webhook_endpoints_disabled_total", {
  description: "endpoints the notifier disabled (410 Gone, or failing every delivery for WEBHOOK_DISABLE_AFTER)",
  incremental: true
})
/** outcome: queued (deliveries written), none (no endpoint subscribed), duplicate (the inbox had it) */
export const webhookEvents = Metric.counter("notifier_events_total", {
  description: "order events the notifier consumed, by outcome",
  incremental: true
})
export const notifierMessageRetries = Metric.counter("notifier_message_retries_total", {
  description: "notifier message handlings retried after an infrastructure failure (database, broker)",
  incremental: true
})
/** where: dispatch (a pass taking due deliveries), record (an attempt's outcome not recorded), backlog */
export const notifierErrors = Metric.counter("notifier_errors_total", {
  description: "notifier work that failed on the database and is tried again (PROCESSING_ERROR lines), by where",
  incremental: true
})
