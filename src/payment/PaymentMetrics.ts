/** The payment process's counters (PaymentProcess.ts), on /metrics; created at 0 when the processor starts. */
import { Metric } from "effect"

export const eventsProcessed = Metric.counter("worker_events_processed_total", { incremental: true })
export const duplicatesSkipped = Metric.counter("worker_duplicates_skipped_total", { incremental: true })
export const paymentsSucceeded = Metric.counter("payments_succeeded_total", { incremental: true })
export const paymentsFailed = Metric.counter("payments_failed_total", { incremental: true })
export const paymentRetries = Metric.counter("payment_retries_total", {
  description: "failed provider calls retried (in process or scheduled)",
  incremental: true
})
export const paymentRetriesScheduled = Metric.counter("payment_retries_scheduled_total", {
  description: "durable retries recorded in the order's stream",
  incremental: true
})
export const paymentsParked = Metric.counter("payments_parked_total", {
  description: "payments whose attempts are exhausted, left PAYMENT_PENDING for an operator",
  incremental: true
})
export const paymentsReconciled = Metric.counter("payments_reconciled_total", {
  description: "parked payments settled by the provider's stored result for their key (no operator needed)",
  incremental: true
})
export const refundsSucceeded = Metric.counter("refunds_succeeded_total", { incremental: true })
export const refundsFailed = Metric.counter("refunds_failed_total", {
  description: "refunds the provider refused (their amount is refundable again)",
  incremental: true
})
export const refundsParked = Metric.counter("refunds_parked_total", {
  description: "refunds whose attempts are exhausted, left pending for an operator",
  incremental: true
})
export const refundsReconciled = Metric.counter("refunds_reconciled_total", {
  description: "parked refunds settled by the provider's record of their key (no operator needed)",
  incremental: true
})
