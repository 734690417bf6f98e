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
import { makeBatcher } from "../Batcher.js"
import { unnestRows } from "../database/UnnestRows.js"
import type { Order, OrderEvent, OrderId } from "../domain/Order.js"
import { evolve, fold } from "../domain/OrderDecider.js"
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
import { busyRelation, type Claimed, type Lease, leaseNone, makeDispatcher, noSlots, type Slots } from "./Dispatcher.js"
import { webhookTypeOf, withoutWebhook } from "./EventTypes.js"
import { notifierMessageRetries, webhookEvents } from "./WebhookMetrics.js"

/** The notifier's consumer group, also its inbox consumer name. */
export const NotifierGroup = Config.all({
  prefix: KafkaTopicPrefix,
  group: Config.option(Config.string("NOTIFIER_GROUP"))
}).pipe(Config.map(({ group, prefix }) => group._tag === "Some" ? group.value : `${prefix}notifier`))

/** The notifier's batching: at most NOTIFIER_BATCH_MAX events per statement; the order after the last event
 * seen kept for NOTIFIER_STATE_CACHE orders (the next event of one folds onto it instead of reading the log). */
export const NotifierConfig = Config.all({
  batchMax: Config.integer("NOTIFIER_BATCH_MAX").pipe(Config.withDefault(200), Config.validate({ message: "NOTIFIER_BATCH_MAX: > 0", validation: (n) => n > 0 })),
  cacheMax: Config.integer("NOTIFIER_STATE_CACHE").pipe(Config.withDefault(10_000), Config.validate({ message: "NOTIFIER_STATE_CACHE: ≥ 0", validation: (n) => n >= 0 }))
})

/** One event for `writeDeliveries`. `check`: the event as the message carries it (its stored type, schema version
 * and data as JSON text) — the statement writes nothing for it unless the log holds exactly that event at that
 * version (`inLog` false). Without `check` the caller read it from the log itself. */
export interface EventToNotify {
  readonly eventId: string
  readonly orderId: string
  readonly version: number
  /** the webhook event type */
  readonly type: string
  readonly body: string
  readonly recordedAt: Date
  readonly traceparent: string | null
  readonly tracestate: string | null
  readonly check?: { readonly type: string; readonly schemaVersion: number; readonly data: string }
}

/** What the statement did for one event: whether the log holds it, whether some enabled endpoint wants it,
 * whether its inbox row is new (false: a duplicate, or nobody wants it), how many deliveries it wrote, those it
 * leased to this process (to be called at once), and the endpoints of those that were free to go but found no
 * room. */
export interface Notified {
  readonly inLog: boolean
  readonly wanted: boolean
  readonly fresh: boolean
  readonly written: number
  readonly leased: ReadonlyArray<Claimed>
  readonly waiting: ReadonlyArray<string>
}

/**
 * What events make, in ONE statement for any number of them (one transaction): for each event the log holds
 * (checked here when the caller did not read it from the log), one delivery per enabled endpoint subscribed to
 * its type and registered before it was recorded, and its inbox row; nothing for an event the inbox already has
 * (a duplicate: its deliveries were written the first time) or that nobody wants (no inbox row either — a
 * redelivery finds nobody too, or an endpoint enabled since, which is then rightly told). A delivery with no
 * lower version of its (endpoint, order) pending is written leased to this process when `lease` leaves its
 * endpoint room (its first attempt counted): the dispatcher calls it without a claim.
 */
export const writeDeliveries = (sql: SqlClient.SqlClient, group: string, events: ReadonlyArray<EventToNotify>, lease: Lease = leaseNone) => {
  return sql<{
    in_log: boolean
    wanted: boolean
    fresh: boolean
    written: number
    leased: ReadonlyArray<{ id: string; endpoint_id: string; lease_token: string; url: string; secret: string; previous_secret: string | null }>
    waiting: ReadonlyArray<string>
  }>`
    WITH m AS (${
    unnestRows(sql, {
      i: "int",
      event_id: "uuid",
      order_id: "uuid",
      version: "int",
      hook: "text",
      body: "text",
      recorded_at: "timestamptz",
      traceparent: "text",
      tracestate: "text",
      stored_type: "text",
      schema_version: "int",
      data: "jsonb"
    }, events.map((e, i) => ({
      i,
      event_id: e.eventId,
      order_id: e.orderId,
      version: e.version,
      hook: e.type,
      body: e.body,
      recorded_at: e.recordedAt.toISOString(),
      traceparent: e.traceparent,
      tracestate: e.tracestate,
      stored_type: e.check?.type ?? null,
      schema_version: e.check?.schemaVersion ?? null,
      data: e.check?.data ?? null
    })))
  }),
    busy AS (${busyRelation(sql, lease.busy)}),
    ok AS (
      SELECT m.* FROM m
      WHERE m.stored_type IS NULL OR EXISTS (
        SELECT 1 FROM events e
        WHERE e.stream_id = m.order_id AND e.version = m.version AND e.event_id = m.event_id AND e.type = m.stored_type
          AND e.schema_version = m.schema_version AND e.data = m.data
          -- the envelope carries the time to the millisecond
          AND e.recorded_at >= m.recorded_at AND e.recorded_at < m.recorded_at + interval '1 millisecond')),
    sub AS (
      SELECT ok.i, ep.id AS endpoint_id FROM ok JOIN webhook_endpoints ep
        ON ep.status = 'enabled' AND (ep.event_types IS NULL OR ok.hook = ANY(ep.event_types)) AND ep.created_at <= ok.recorded_at),
    i AS (
      INSERT INTO inbox (consumer, message_id)
      SELECT ${group}, ok.event_id FROM ok WHERE EXISTS (SELECT 1 FROM sub WHERE sub.i = ok.i)
      ON CONFLICT DO NOTHING RETURNING message_id),
    x AS (
      SELECT ok.*, sub.endpoint_id, md5(sub.endpoint_id::text || '/' || ok.event_id::text)::uuid AS id,
             NOT EXISTS (
               SELECT 1 FROM webhook_deliveries p
               WHERE p.endpoint_id = sub.endpoint_id AND p.order_id = ok.order_id AND p.status = 'pending' AND p.version < ok.version)
             -- nor a lower version in this very statement (one consumer never batches two of an order; be sure)
             AND NOT EXISTS (
               SELECT 1 FROM sub s2 JOIN ok o2 ON o2.i = s2.i
               WHERE s2.endpoint_id = sub.endpoint_id AND o2.order_id = ok.order_id AND o2.version < ok.version) AS free
      FROM sub JOIN ok ON ok.i = sub.i
      WHERE ok.event_id IN (SELECT message_id FROM i)),
    y AS (
      SELECT x.*, x.free
               AND row_number() OVER (PARTITION BY x.endpoint_id, x.free ORDER BY x.i) <= greatest(${lease.perEndpoint} - coalesce(b.n, 0), 0)
               AND row_number() OVER (PARTITION BY x.free ORDER BY x.i, x.endpoint_id) <= ${lease.room} AS lease
      FROM x LEFT JOIN busy b ON b.endpoint_id = x.endpoint_id),
    d AS (
      INSERT INTO webhook_deliveries (id, endpoint_id, event_id, order_id, version, event_type, body, event_recorded_at, traceparent, tracestate,
                                      attempts, leased_until, lease_token, last_attempt_at)
      SELECT y.id, y.endpoint_id, y.event_id, y.order_id, y.version, y.hook, y.body, y.recorded_at, y.traceparent, y.tracestate,
             CASE WHEN y.lease THEN 1 ELSE 0 END,
             CASE WHEN y.lease THEN now() + ${lease.leaseMs} * interval '1 millisecond' END,
             CASE WHEN y.lease THEN gen_random_uuid() END,
             CASE WHEN y.lease THEN now() END
      FROM y
      ON CONFLICT (endpoint_id, event_id) DO NOTHING
      RETURNING id, event_id, endpoint_id, lease_token)
    SELECT EXISTS (SELECT 1 FROM ok WHERE ok.i = m.i) AS in_log, EXISTS (SELECT 1 FROM sub WHERE sub.i = m.i) AS wanted,
           EXISTS (SELECT 1 FROM i WHERE i.message_id = m.event_id) AS fresh,
           (SELECT count(*) FROM d WHERE d.event_id = m.event_id)::int AS written,
           (SELECT coalesce(jsonb_agg(jsonb_build_object('id', d.id, 'endpoint_id', d.endpoint_id, 'lease_token', d.lease_token, 'url', ep.url,
                     'secret', ep.secret, 'previous_secret', CASE WHEN ep.previous_secret_until > now() THEN ep.previous_secret END)), '[]'::jsonb)
            FROM d JOIN webhook_endpoints ep ON ep.id = d.endpoint_id WHERE d.event_id = m.event_id AND d.lease_token IS NOT NULL) AS leased,
           (SELECT coalesce(jsonb_agg(y.endpoint_id), '[]'::jsonb) FROM y WHERE y.i = m.i AND y.free AND NOT y.lease) AS waiting
    FROM m ORDER BY m.i`.pipe(
    orStoreError,
    Effect.map((rows) =>
      rows.map((r, k): Notified => {
        const e = events[k]!
        return {
          inLog: r.in_log,
          wanted: r.wanted,
          fresh: r.fresh,
          written: r.written,
          leased: r.leased.map((l) => ({
            ...l,
            order_id: e.orderId,
            version: e.version,
            event_type: e.type,
            body: e.body,
            attempts: 1,
            event_recorded_at: e.recordedAt,
            traceparent: e.traceparent,
            tracestate: e.tracestate
          })),
          waiting: r.waiting
        }
      })
    )
  )
}

/** Where the handler's leased deliveries go (the dispatcher's): by default nowhere — nothing is leased. */
export interface NotifierDispatch {
  readonly slots: Slots
  /** endpoints that had deliveries free to go but no room */
  readonly backlog: (endpointIds: ReadonlyArray<string>) => Effect.Effect<void>
}

const detached: NotifierDispatch = { slots: noSlots, backlog: () => Effect.void }

/** The order right after an event, per order, for the orders this notifier saw last (at most `max`): the next
 * event of an order folds onto it instead of reading the stream. Only events the log holds go in (checked by
 * the statement that writes their deliveries, or read from the log). */
const makeStates = (max: number) => {
  const states = new Map<string, { readonly version: number; readonly order: Order }>()
  return {
    get: (orderId: string) => {
      const s = states.get(orderId)
      if (s !== undefined) {
        states.delete(orderId)
        states.set(orderId, s)
      }
      return s
    },
    set: (orderId: string, version: number, order: Order) => {
      states.delete(orderId)
      states.set(orderId, { version, order })
      if (states.size > max) states.delete(states.keys().next().value!)
    },
    drop: (orderId: string) => void states.delete(orderId)
  }
}

/** Handle one raw message of the order-events topic for the notifier: total, never fails (interruption aside). */
export const makeNotifierHandler = (group: string, dispatch: NotifierDispatch = detached) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const store = yield* EventStore
    const deadLetters = yield* DeadLetters
    const { batchMax, cacheMax } = yield* NotifierConfig
    for (const outcome of ["queued", "none", "duplicate"]) yield* Metric.incrementBy(Metric.tagged(webhookEvents, "outcome", outcome), 0)
    yield* Metric.incrementBy(notifierMessageRetries, 0)
    const counted = (outcome: string) => Metric.increment(Metric.tagged(webhookEvents, "outcome", outcome))
    const park = (message: IncomingMessage, error: string) => deadLetters.park({ consumer: group, message, error, attempts: 0 })
    const states = makeStates(cacheMax)
    // the events of the messages handled at the same time go to the database in one statement
    const write = yield* makeBatcher({
      maxBatch: batchMax,
      workers: 1,
      span: "Notifier.writeDeliveries",
      run: (events: ReadonlyArray<EventToNotify>) =>
        dispatch.slots.lease((lease) =>
          Effect.map(writeDeliveries(sql, group, events, lease), (rows) => [rows.map(Either.right), rows.flatMap((r) => r.leased)] as const)
        )
    })

    const bodyOf = (type: string, order: Order, event: OrderEvent, eventId: string, version: number, recordedAt: string) => {
      const refund = "refundId" in event ? order.refunds.find((r) => r.refundId === event.refundId) : undefined
      return JSON.stringify({
        type,
        timestamp: recordedAt,
        data: {
          order: toView(order),
          eventId,
          version,
          ...(refund === undefined ? {} : { refund: toRefundView(order, refund) })
        }
      })
    }

    const once = (message: IncomingMessage) =>
      Effect.gen(function*() {
        const decoded = fromMessage(message.value, keyText(message))
        if (Either.isLeft(decoded)) return yield* park(message, decoded.left)
        const { envelope, event } = decoded.right
        const type = webhookTypeOf[event._tag]
        if (type === null) return
        const orderId = envelope.orderId as OrderId
        const trace = traceHeaders(message)
        const common = {
          eventId: envelope.eventId,
          orderId,
          version: envelope.version,
          type,
          traceparent: trace.traceparent ?? null,
          tracestate: trace.tracestate ?? null
        }
        // the order right before the event: the one this notifier folded last, when it is the version before
        const before = envelope.version === 1 ? { version: 0, order: undefined } : states.get(orderId)
        let notified: Notified
        let after: Order | undefined
        if (before !== undefined && before.version === envelope.version - 1) {
          after = evolve(before.order, event)
          const recordedAt = new Date(envelope.recordedAt)
          notified = after === undefined ? { inLog: false, wanted: false, fresh: false, written: 0, leased: [], waiting: [] } : yield* write({
            ...common,
            body: bodyOf(type, after, event, envelope.eventId, envelope.version, recordedAt.toISOString()),
            recordedAt,
            check: { type: envelope.type, schemaVersion: envelope.schemaVersion, data: JSON.stringify(envelope.data) }
          })
        } else notified = { inLog: false, wanted: false, fresh: false, written: 0, leased: [], waiting: [] }
        if (!notified.inLog) {
          // not folded here before, or not exactly what the log holds: the log, read up to the event, decides
          const log = (yield* store.readStream(orderId)).filter((e) => e.version <= envelope.version)
          const recorded = log[log.length - 1]
          if (recorded === undefined || recorded.version !== envelope.version || recorded.event.eventId !== envelope.eventId) {
            states.drop(orderId)
            return yield* park(message, `event ${envelope.eventId} is not in the log of order ${orderId} at version ${envelope.version}`)
          }
          after = fold(log.map((e) => e.event))!
          // what the log holds, not what the message said (a forged copy of a real event is told as it happened)
          const logged = webhookTypeOf[recorded.event._tag]
          if (logged !== null) {
            notified = yield* write({
              ...common,
              type: logged,
              body: bodyOf(logged, after, recorded.event, envelope.eventId, envelope.version, recorded.recordedAt.toISOString()),
              recordedAt: recorded.recordedAt
            })
          }
        }
        states.set(orderId, envelope.version, after!)
        // a duplicate (the inbox had it) writes nothing: its deliveries were written the first time
        yield* counted(!notified.wanted ? "none" : notified.written > 0 ? "queued" : "duplicate")
        yield* dispatch.backlog(notified.waiting)
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
    const handle = yield* makeNotifierHandler(group, dispatcher)
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
