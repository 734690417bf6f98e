/** What the keyed consumer (KeyedConsumer.ts) tells readiness, and its metrics, tagged with its group. */
import { Metric } from "effect"

export type ConsumerState = "starting" | "consuming" | "restarting" | "stopped"

export interface ConsumerStatus {
  readonly state: ConsumerState
  readonly assignedPartitions: number
  readonly inFlight: number
  readonly restarts: number
  readonly lastError: string | null
}

/** The consumer's metrics, tagged with its group. */
export const consumerMetrics = (groupId: string) => {
  const tag = <M extends Metric.Metric<any, any, any>>(m: M) => Metric.tagged(m, "group", groupId) as M
  return {
    up: tag(Metric.gauge("kafka_consumer_up", { description: "1 while the consumer is joined and consuming" })),
    assigned: tag(Metric.gauge("kafka_consumer_assigned_partitions", { description: "partitions assigned to this consumer" })),
    inFlight: tag(Metric.gauge("kafka_consumer_in_flight_messages", { description: "messages taken and not finished" })),
    restarts: tag(Metric.counter("kafka_consumer_restarts_total", { description: "consumer crashes recovered by a restart", incremental: true })),
    rebalances: tag(Metric.counter("kafka_consumer_rebalances_total", { description: "group rebalances seen", incremental: true })),
    commitFailures: tag(Metric.counter("kafka_consumer_commit_failures_total", { description: "offset commits that failed (retried)", incremental: true })),
    redeliveries: tag(Metric.counter("kafka_consumer_redeliveries_total", { description: "messages fetched again while held or finished here", incremental: true })),
    skipped: tag(Metric.counter("kafka_consumer_skipped_messages_total", { description: "messages finished unhandled: their event-type header names an event this consumer does not act on", incremental: true })),
    handlerDefects: tag(Metric.counter("kafka_consumer_handler_defects_total", { description: "handler defects (message handled again)", incremental: true }))
  }
}
