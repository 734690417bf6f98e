/**
 * The stats projection, asynchronous (docs/ARCHITECTURE.md "Projections"): revenue per currency per day (of
 * payment), refunded revenue per currency per day (of refund) and order counts per state, fed from the log by (transaction id, position) with its checkpoint
 * stored in the same transaction as its rows.
 *
 * Gap safety (docs/ARCHITECTURE.md "Event store contract"): a batch reads only events whose writing
 * transaction is below pg_snapshot_xmin(pg_current_snapshot()) — every transaction below it has ended — in
 * (transaction id, position) order after the checkpoint. An event committed late by a long transaction has a
 * transaction id at or above the xmin of every read that could not see it, so it is read later, never skipped;
 * a plain position checkpoint would skip it (the test holds a transaction open to prove this).
 */
import { SqlClient } from "@effect/sql"
import { Config, Duration, Effect, Layer, Schedule } from "effect"
import type { OrderEvent } from "../domain/Order.js"
import { decodeEvent } from "../eventstore/EventCodec.js"
import { orStoreError } from "../Infrastructure.js"
import { forkBounded, ShutdownBudgetConfig } from "../Shutdown.js"

export const STATS = "stats"

export const StatsConfig = Config.all({
  batchSize: Config.integer("STATS_BATCH_SIZE").pipe(Config.withDefault(1000)),
  pollMs: Config.integer("STATS_POLL_MS").pipe(Config.withDefault(250))
})

interface Row {
  readonly transaction_id: string
  readonly position: string
  readonly type: string
  readonly schema_version: number
  readonly data: unknown
}

const statusAfter: Partial<Record<OrderEvent["_tag"], readonly [from: string | null, to: string]>> = {
  OrderPlaced: [null, "CREATED"],
  PaymentRequested: ["CREATED", "PAYMENT_PENDING"],
  OrderPaid: ["PAYMENT_PENDING", "PAID"],
  OrderFailed: ["PAYMENT_PENDING", "FAILED"],
  OrderCancelled: ["CREATED", "CANCELLED"]
}

export class StatsProjection extends Effect.Service<StatsProjection>()("StatsProjection", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { batchSize } = yield* StatsConfig

    type Checkpoint = { transaction_id: string; position: string }
    /** The checkpoint row, locked (one projector at a time: the row is the lock), made if missing — or, with
     * `skipLocked`, undefined at once when another projector holds it. */
    const lockCheckpoint = (skipLocked: boolean) =>
      Effect.gen(function*() {
        const [held] = skipLocked
          ? yield* sql<Checkpoint>`
              SELECT transaction_id::text, position::text FROM projection_checkpoints WHERE name = ${STATS} FOR UPDATE SKIP LOCKED`
          : yield* sql<Checkpoint>`
              SELECT transaction_id::text, position::text FROM projection_checkpoints WHERE name = ${STATS} FOR UPDATE`
        if (held !== undefined) return held
        // missing (a new database, a reset) — or, skipping, held elsewhere: the insert then makes nothing
        const [made] = yield* sql<Checkpoint>`
          INSERT INTO projection_checkpoints (name) VALUES (${STATS}) ON CONFLICT DO NOTHING
          RETURNING transaction_id::text, position::text`
        if (made !== undefined || skipLocked) return made
        return (yield* sql<Checkpoint>`
          SELECT transaction_id::text, position::text FROM projection_checkpoints WHERE name = ${STATS} FOR UPDATE`)[0]
      })

    /** Apply the next batch of safely committed events; how many were applied (0 when `skipLocked` and another
     * projector holds the checkpoint). */
    const stepWith = (skipLocked: boolean) => sql.withTransaction(Effect.gen(function*() {
      const checkpoint = yield* lockCheckpoint(skipLocked)
      if (checkpoint === undefined) return 0
      // ORDER BY the table's columns (e.*), not the text aliases of the output: "730" sorts after "63356"
      const rows = yield* sql<Row>`
        SELECT e.transaction_id::text AS transaction_id, e.position::text AS position, e.type, e.schema_version, e.data
        FROM events e
        WHERE e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
          AND (e.transaction_id, e.position) > (${checkpoint.transaction_id}::xid8, ${checkpoint.position}::bigint)
        ORDER BY e.transaction_id, e.position
        LIMIT ${batchSize}`
      if (rows.length === 0) return 0
      const counts = new Map<string, number>()
      const bump = (status: string, by: number) => counts.set(status, (counts.get(status) ?? 0) + by)
      const placed: Array<{ orderId: string; minor: string; currency: string }> = []
      const paid: Array<{ orderId: string; day: string }> = []
      const refunds: Array<{ orderId: string; day: string; minor: bigint; currency: string }> = []
      for (const row of rows) {
        const event = decodeEvent(row.type, row.schema_version, row.data)
        const move = statusAfter[event._tag]
        if (move) {
          if (move[0]) bump(move[0], -1)
          bump(move[1], 1)
        }
        if (event._tag === "OrderPlaced") {
          placed.push({ orderId: event.orderId, minor: event.amount.minor.toString(), currency: event.amount.currency })
        }
        if (event._tag === "OrderPaid") paid.push({ orderId: event.orderId, day: event.occurredAt.toISOString().slice(0, 10) })
        if (event._tag === "RefundSucceeded") {
          refunds.push({
            orderId: event.orderId,
            day: event.occurredAt.toISOString().slice(0, 10),
            minor: event.amount.minor,
            currency: event.amount.currency
          })
        }
      }
      if (placed.length > 0) {
        yield* sql`
          INSERT INTO stats_order_amounts (order_id, amount_minor, currency)
          SELECT * FROM unnest(${placed.map((p) => p.orderId)}::uuid[], ${placed.map((p) => p.minor)}::bigint[],
                               ${placed.map((p) => p.currency)}::text[])
          ON CONFLICT DO NOTHING`
      }
      if (paid.length > 0) {
        yield* sql`
          INSERT INTO stats_revenue_daily (currency, day, paid_orders, revenue_minor)
          SELECT a.currency, p.day, count(*), sum(a.amount_minor)
          FROM unnest(${paid.map((p) => p.orderId)}::uuid[], ${paid.map((p) => p.day)}::date[]) AS p(order_id, day)
          JOIN stats_order_amounts a USING (order_id)
          GROUP BY a.currency, p.day
          ON CONFLICT (currency, day) DO UPDATE SET
            paid_orders = stats_revenue_daily.paid_orders + EXCLUDED.paid_orders,
            revenue_minor = stats_revenue_daily.revenue_minor + EXCLUDED.revenue_minor`
      }
      if (refunds.length > 0) {
        // a refund moves its order PAID → PARTIALLY_REFUNDED → REFUNDED by its refunded total: the projection
        // keeps each order's total, and applies this batch's refunds in log order
        const ids = [...new Set(refunds.map((r) => r.orderId))]
        const known = new Map((yield* sql<{ order_id: string; amount_minor: string; refunded_minor: string }>`
          SELECT order_id, amount_minor::text AS amount_minor, refunded_minor::text AS refunded_minor
          FROM stats_order_amounts WHERE order_id = ANY (${ids}::uuid[])`).map((r) =>
          [r.order_id, { amount: BigInt(r.amount_minor), refunded: BigInt(r.refunded_minor) }]
        ))
        const daily = new Map<string, { currency: string; day: string; refunds: number; minor: bigint }>()
        for (const refund of refunds) {
          const order = known.get(refund.orderId)
          if (order !== undefined) {
            bump(order.refunded === 0n ? "PAID" : "PARTIALLY_REFUNDED", -1)
            order.refunded += refund.minor
            bump(order.refunded >= order.amount ? "REFUNDED" : "PARTIALLY_REFUNDED", 1)
          }
          const key = `${refund.currency}/${refund.day}`
          const day = daily.get(key) ?? { currency: refund.currency, day: refund.day, refunds: 0, minor: 0n }
          day.refunds += 1
          day.minor += refund.minor
          daily.set(key, day)
        }
        yield* sql`
          UPDATE stats_order_amounts a SET refunded_minor = u.refunded
          FROM unnest(${[...known.keys()]}::uuid[], ${[...known.values()].map((o) => o.refunded.toString())}::bigint[]) AS u(order_id, refunded)
          WHERE a.order_id = u.order_id`
        const days = [...daily.values()]
        yield* sql`
          INSERT INTO stats_revenue_daily (currency, day, refunds, refunded_minor)
          SELECT * FROM unnest(${days.map((d) => d.currency)}::text[], ${days.map((d) => d.day)}::date[],
                               ${days.map((d) => d.refunds)}::bigint[], ${days.map((d) => d.minor.toString())}::bigint[])
          ON CONFLICT (currency, day) DO UPDATE SET
            refunds = stats_revenue_daily.refunds + EXCLUDED.refunds,
            refunded_minor = stats_revenue_daily.refunded_minor + EXCLUDED.refunded_minor`
      }
      yield* sql`
        INSERT INTO stats_orders_by_state (status, orders)
        SELECT * FROM unnest(${[...counts.keys()]}::text[], ${[...counts.values()]}::bigint[])
        ON CONFLICT (status) DO UPDATE SET orders = stats_orders_by_state.orders + EXCLUDED.orders`
      const last = rows[rows.length - 1]!
      yield* sql`
        UPDATE projection_checkpoints
           SET transaction_id = ${last.transaction_id}::xid8, position = ${last.position}::bigint, updated_at = now()
         WHERE name = ${STATS}`
      return rows.length
    })).pipe(orStoreError)
    const step = stepWith(false)

    return {
      step,
      /** A projector's pass: a step, or nothing at once while another projector holds the checkpoint (waiting
       * for it would only find its batch applied — every process running the role paid a pass for nothing). */
      pass: stepWith(true),
      /** Apply batches until nothing safely committed is left. */
      catchUp: Effect.iterate(1, { while: (n) => n > 0, body: () => step }).pipe(Effect.asVoid),
      /** Throw the projection away: it is replayed from the start of the log by the next steps. */
      reset: sql.withTransaction(Effect.gen(function*() {
        yield* sql`LOCK TABLE projection_checkpoints IN EXCLUSIVE MODE`
        yield* sql`TRUNCATE stats_order_amounts, stats_revenue_daily, stats_orders_by_state`
        yield* sql`DELETE FROM projection_checkpoints WHERE name = ${STATS}`
      })).pipe(orStoreError),
      /** Events of the log the projection has not applied yet (committed or not). */
      lag: sql<{ events: number }>`
        SELECT count(*)::int AS events FROM events e, (
          SELECT coalesce((SELECT transaction_id FROM projection_checkpoints WHERE name = ${STATS}), '0'::xid8) AS tx,
                 coalesce((SELECT position FROM projection_checkpoints WHERE name = ${STATS}), 0) AS pos) c
        WHERE (e.transaction_id, e.position) > (c.tx, c.pos)`.pipe(Effect.map((r) => r[0]!.events), orStoreError),
      revenue: sql<{ currency: string; day: string; paid_orders: string; revenue_minor: string; refunds: string; refunded_minor: string }>`
        SELECT currency, day::text AS day, paid_orders::text, revenue_minor::text, refunds::text, refunded_minor::text
        FROM stats_revenue_daily
        ORDER BY day DESC, currency LIMIT 1000`.pipe(orStoreError),
      byState: sql<{ status: string; orders: string }>`
        SELECT status, orders::text FROM stats_orders_by_state ORDER BY status`.pipe(orStoreError)
    } as const
  })
}) {}

/** The projector role: steps while there is work, polls otherwise. */
export const StatsProjectorLive = Layer.scopedDiscard(
  Effect.gen(function*() {
    const projection = yield* StatsProjection
    const { batchSize, pollMs } = yield* StatsConfig
    const pass: Effect.Effect<void> = projection.pass.pipe(
      Effect.flatMap((n) => (n >= batchSize ? pass : Effect.sleep(Duration.millis(pollMs)))),
      Effect.catchAllCause((cause) =>
        Effect.logWarning("stats projection pass failed").pipe(
          Effect.annotateLogs({ type: "PROCESSING_ERROR", role: "projector", cause: String(cause).slice(0, 500) }),
          Effect.zipRight(Effect.sleep(Duration.seconds(1)))
        )
      )
    )
    const budget = yield* Effect.orDie(ShutdownBudgetConfig)
    // a pass stopped at shutdown waits for its transaction's uninterruptible BEGIN/ROLLBACK: bounded (src/Shutdown.ts)
    yield* forkBounded("projector stop", budget.disconnectMs, Effect.repeat(pass, Schedule.forever))
    yield* Effect.logInfo("stats projector started").pipe(Effect.annotateLogs({ type: "STARTUP", role: "projector" }))
  })
)
