/**
 * The notifier role (issue 20, docs/ARCHITECTURE.md "Notifier"): the second consumer of `orders.events`, in its
 * own group (NOTIFIER_GROUP, default `<prefix>notifier`) through the keyed consumer (one order's events in
 * version order), with its own inbox consumer name. For an event some enabled endpoint subscribed to it writes,
 * in one statement (one transaction), its inbox row and one delivery row per such endpoint registered before the
 * event was recorded (a notifier catching up after an outage sends a new endpoint nothing older), holding the body
 * every attempt sends: `{type, timestamp, data: {order, eventId, version, refund?}}`, the order as it was right
 * after the event (the log read up to the event's version — a message whose event is not in the log at that
 * version is parked, never delivered). The HTTP calls happen after the commit (Dispatcher.ts).
 */
import { SqlClient } from "@effect/sql"
import { Config, Effect, Either, Layer, Metric } from "effect"
import { KafkaTopicPrefix } from "../Config.js"
import { DeadLetters } from "../deadletter/DeadLetters.js"
import type { OrderId } from "../domain/Order.js"
import { fold } from "../domain/OrderDecider.js"
import { EventStore } from "../eventstore/EventStore.js"
import { orStoreError } from "../Infrastructure.js"
import { fromMessage } from "../kafka/Envelope.js"
import { contained, keyText, skipsTypes, traceHeaders } from "../kafka/Handling.js"
import { type IncomingMessage, Kafka } from "../kafka/Kafka.js"
import { type ConsumerStatus, runKeyedConsumer } from "../kafka/KeyedConsumer.js"
import { traced, withRemoteParent } from "../observability/Tracing.js"
import { toRefundView, toView } from "../orders/Views.js"
import { ConsumerConfig } from "../payment/PaymentWorker.js"
import { Readiness } from "../Readiness.js"
import { makeDispatcher } from "./Dispatcher.js"
import { webhookTypeOf, withoutWebhook } from "./EventTypes.js"
import { notifierMessageRetries, webhookEvents } from "./WebhookMetrics.js"

/** The notifier's consumer group, also its inbox consumer name. */
export const NotifierGroup = Config.all({
  prefix: KafkaTopicPrefix,
  group: Config.option(Config.string("NOTIFIER_GROUP"))
}).pipe(Config.map(({ group, prefix }) => group._tag === "Some" ? group.value : `${prefix}notifier`))

/** What one event makes: its deliveries (one per enabled endpoint subscribed to its type, registered before the
 * event was recorded) and the inbox row, in one statement; nothing when the inbox already has it (`fresh` 0: a
 * duplicate). How many deliveries it wrote. */
export const writeDeliveries = (sql: SqlClient.SqlClient, e: {
  readonly group: string
  readonly eventId: string
  readonly orderId: string
  readonly version: number
  readonly type: string
  readonly body: string
  readonly recordedAt: Date
  readonly traceparent: string | null
  readonly tracestate: string | null
}) =>
  sql<{ fresh: number; written: number }>`
    WITH i AS (
      INSERT INTO inbox (consumer, message_id) VALUES (${e.group}, ${e.eventId}) ON CONFLICT DO NOTHING RETURNING 1),
    d AS (
      INSERT INTO webhook_deliveries (id, endpoint_id, event_id, order_id, version, event_type, body, event_recorded_at, traceparent, tracestate)
      SELECT md5(ep.id::text || '/' || ${e.eventId})::uuid, ep.id, ${e.eventId}, ${e.orderId}, ${e.version}, ${e.type},
             ${e.body}, ${e.recordedAt}, ${e.traceparent}, ${e.tracestate}
      FROM webhook_endpoints ep
      WHERE ep.status = 'enabled' AND (ep.event_types IS NULL OR ${e.type} = ANY(ep.event_types)) AND ep.created_at <= ${e.recordedAt}
        AND EXISTS (SELECT 1 FROM i)
      ON CONFLICT (endpoint_id, event_id) DO NOTHING
      RETURNING endpoint_id)
    SELECT (SELECT count(*) FROM i)::int AS fresh, (SELECT count(*) FROM d)::int AS written`.pipe(
    orStoreError,
    Effect.map((rows) => ({ fresh: (rows[0]?.fresh ?? 0) > 0, written: rows[0]?.written ?? 0 }))
  )

/** Handle one raw message of the order-events topic for the notifier: total, never fails (interruption aside). */
export const makeNotifierHandler = (group: string, wake: Effect.Effect<void>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const store = yield* EventStore
    const deadLetters = yield* DeadLetters
    for (const outcome of ["queued", "none", "duplicate"]) yield* Metric.incrementBy(Metric.tagged(webhookEvents, "outcome", outcome), 0)
    yield* Metric.incrementBy(notifierMessageRetries, 0)
    const counted = (outcome: string) => Metric.increment(Metric.tagged(webhookEvents, "outcome", outcome))
    const park = (message: IncomingMessage, error: string) => deadLetters.park({ consumer: group, message, error, attempts: 0 })

    const subscribers = (type: string, recordedAt: string) =>
      sql<{ n: number }>`
        SELECT count(*)::int AS n FROM webhook_endpoints
        WHERE status = 'enabled' AND (event_types IS NULL OR ${type} = ANY(event_types)) AND created_at <= ${recordedAt}::timestamptz`.pipe(
        orStoreError,
        Effect.map((rows) => rows[0]?.n ?? 0)
      )

    const once = (message: IncomingMessage) =>
      Effect.gen(function*() {
        const decoded = fromMessage(message.value, keyText(message))
        if (Either.isLeft(decoded)) return yield* park(message, decoded.left)
        const { envelope, event } = decoded.right
        const type = webhookTypeOf[event._tag]
        if (type === null) return
        // nobody to tell: nothing to write (not even the inbox row — a redelivery finds nobody either, or an
        // endpoint enabled since, which is then rightly told)
        if ((yield* subscribers(type, envelope.recordedAt)) === 0) return yield* counted("none")
        const orderId = envelope.orderId as OrderId
        const log = (yield* store.readStream(orderId)).filter((e) => e.version <= envelope.version)
        const recorded = log[log.length - 1]
        if (recorded === undefined || recorded.version !== envelope.version || recorded.event.eventId !== envelope.eventId) {
          return yield* park(message, `event ${envelope.eventId} is not in the log of order ${orderId} at version ${envelope.version}`)
        }
        const order = fold(log.map((e) => e.event))!
        const refund = "refundId" in event ? order.refunds.find((r) => r.refundId === event.refundId) : undefined
        const body = JSON.stringify({
          type,
          timestamp: recorded.recordedAt.toISOString(),
          data: {
            order: toView(order),
            eventId: envelope.eventId,
            version: envelope.version,
            ...(refund === undefined ? {} : { refund: toRefundView(order, refund) })
          }
        })
        const trace = traceHeaders(message)
        const written = yield* writeDeliveries(sql, {
          group,
          eventId: envelope.eventId,
          orderId,
          version: envelope.version,
          type,
          body,
          recordedAt: recorded.recordedAt,
          traceparent: trace.traceparent ?? null,
          tracestate: trace.tracestate ?? null
        })
        // a duplicate (the inbox had it) writes nothing: its deliveries were written the first time
        yield* counted(!written.fresh ? "duplicate" : written.written > 0 ? "queued" : "none")
        if (written.written > 0) yield* wake
      }).pipe(
        traced("Notifier.consume", { kind: "consumer", attributes: { "messaging.source": `${message.topic}/${message.partition}/${message.offset}` } }),
        withRemoteParent(traceHeaders(message))
      )

    return (message: IncomingMessage): Effect.Effect<void> =>
      contained(message, once(message), (reason) => park(message, reason), notifierMessageRetries)
  })

/** The notifier role: the consumer writing deliveries, and the dispatcher making them. */
export const NotifierLive = Layer.scopedDiscard(
  Effect.gen(function*() {
    const kafka = yield* Kafka
    const readiness = yield* Readiness
    const config = yield* ConsumerConfig
    const group = yield* NotifierGroup
    const dispatcher = yield* makeDispatcher
    yield* dispatcher.run
    const handle = yield* makeNotifierHandler(group, dispatcher.wake)
    const status = yield* runKeyedConsumer({
      groupId: group,
      topics: [kafka.topics.orderEvents],
      handle,
      maxInFlightPerPartition: config.maxInFlightPerPartition,
      maxConcurrent: config.concurrency,
      commitIntervalMs: config.commitIntervalMs,
      skip: skipsTypes(withoutWebhook),
      shutdown: config.shutdown
    })
    yield* readiness.register("notifier-consumer", Effect.map(status, (s: ConsumerStatus) => ({
      ok: s.state === "consuming",
      ...(s.state === "consuming" ? {} : { reason: s.state }),
      detail: s
    })))
    yield* Effect.logInfo("notifier started").pipe(Effect.annotateLogs({ type: "STARTUP", role: "notifier", group }))
  })
)
