/**
 * Reconciliation (issue 21): our event log against the provider's ledger — the one party outside the log that
 * knows what money moved. Every charge and refund is matched by its key (the payment id, the refund id):
 * - `missing_on_our_side`: the provider took (or gave back) money we have no success recorded for;
 * - `missing_on_their_side`: we recorded a success the provider has no record of;
 * - `outcome_differs`: both know the key, one says succeeded and the other declined / refused;
 * - `amount_differs`: both say succeeded, for different amounts or currencies;
 * - `refunds_exceed_charge`: an order's succeeded refunds add up to more than its charge (either side).
 * The window is [since, now − RECONCILE_GRACE_MS): a provider record newer than the grace may still be on its
 * way into our log. Our records in the window come from one query over the log (events recorded in it); a
 * provider record whose key is not among them is looked up in its order's stream (recorded before the window,
 * or late), and one of ours the provider's listing lacks is asked for by key (charged before the window, e.g. a
 * parked payment settled later) — so neither side's edge of the window reads as a difference. Refund totals
 * count the refunds the check saw (those of the window and of the orders it read). A payment or refund of ours
 * still awaiting its answer (retried durably) is in flight, not a difference, unless it is parked while the
 * provider made it.
 * Run by `orders-es reconcile`, `GET /admin/reconciliation` and, every RECONCILE_INTERVAL_MS over the last
 * RECONCILE_WINDOW, by the worker (metric `reconciliation_differences`, log line RECONCILIATION).
 */
import { SqlClient } from "@effect/sql"
import { Cause, Clock, Config, Duration, Effect, Layer, Metric, Schedule } from "effect"
import type { OrderEvent, OrderId } from "../domain/Order.js"
import { decodeEvent } from "../eventstore/EventCodec.js"
import { EventStore } from "../eventstore/EventStore.js"
import { orStoreError, type StoreError } from "../Infrastructure.js"
import { type LedgerEntry, PaymentGateway, type PaymentUnavailable } from "./PaymentGateway.js"

export const ReconcileConfig = Config.all({
  intervalMs: Config.integer("RECONCILE_INTERVAL_MS").pipe(Config.withDefault(3_600_000)),
  /** e.g. "48 hours", "2 days" */
  window: Config.duration("RECONCILE_WINDOW").pipe(Config.withDefault(Duration.hours(48))),
  graceMs: Config.integer("RECONCILE_GRACE_MS").pipe(Config.withDefault(60_000))
})

export type DifferenceKind =
  | "missing_on_our_side"
  | "missing_on_their_side"
  | "outcome_differs"
  | "amount_differs"
  | "refunds_exceed_charge"

/** One side's record of a charge or a refund. */
export interface MoneyRecord {
  readonly kind: "charge" | "refund"
  readonly key: string
  readonly orderId: string
  readonly amountMinor: string
  readonly currency: string
  /** charge: succeeded | declined; refund: succeeded | refused; ours also `pending` (awaiting the provider's answer) */
  readonly outcome: string
  /** ours, pending: its attempts are spent (parked for an operator) */
  readonly parked?: boolean
}

export interface Difference {
  readonly kind: DifferenceKind
  readonly record: "charge" | "refund" | "order"
  readonly key: string
  readonly orderId: string
  readonly ours: MoneyRecord | null
  readonly theirs: MoneyRecord | null
  readonly message: string
}

export interface ReconciliationReport {
  readonly since: string
  readonly until: string
  readonly checked: { readonly ours: number; readonly theirs: number }
  readonly differences: ReadonlyArray<Difference>
}

export const reconciliationDifferences = Metric.gauge("reconciliation_differences", {
  description: "differences the last reconciliation found between the event log and the provider's ledger"
})
export const reconciliationRuns = Metric.counter("reconciliation_runs_total", {
  description: "reconciliation runs by outcome (clean, differences, failed)",
  incremental: true
})

/** Our records of money in one order's events, one per key as the events leave it (the charge's amount is the
 * order's): `pending` while a payment or a refund awaits its result — `parked` once its attempts are spent. */
const recordsOf = (orderId: string, events: ReadonlyArray<OrderEvent>): ReadonlyArray<MoneyRecord> => {
  const placed = events.find((e) => e._tag === "OrderPlaced")
  const amount = placed?._tag === "OrderPlaced" ? { amountMinor: placed.amount.minor.toString(), currency: placed.amount.currency as string } : undefined
  const out = new Map<string, MoneyRecord>()
  const record = (kind: "charge" | "refund", key: string, money: { amountMinor: string; currency: string } | undefined, outcome: string, parked = false) => {
    const known = out.get(id(kind, key))
    const base = money ?? (known ? { amountMinor: known.amountMinor, currency: known.currency } : { amountMinor: "0", currency: "" })
    out.set(id(kind, key), { kind, key, orderId, ...base, outcome, ...(parked ? { parked } : {}) })
  }
  for (const e of events) {
    switch (e._tag) {
      case "PaymentRequested":
        record("charge", e.paymentId, amount, "pending")
        break
      case "PaymentRetryScheduled":
        record("charge", e.paymentId, amount, "pending", e.dueAt === null)
        break
      case "OrderPaid":
      case "OrderFailed":
        record("charge", e.paymentId, amount, e._tag === "OrderPaid" ? "succeeded" : "declined")
        break
      case "RefundRequested":
        record("refund", e.refundId, { amountMinor: e.amount.minor.toString(), currency: e.amount.currency }, "pending")
        break
      case "RefundRetryScheduled":
        record("refund", e.refundId, undefined, "pending", e.dueAt === null)
        break
      case "RefundSucceeded":
        record("refund", e.refundId, { amountMinor: e.amount.minor.toString(), currency: e.amount.currency }, "succeeded")
        break
      case "RefundFailed":
        record("refund", e.refundId, undefined, "refused")
        break
      default:
    }
  }
  return [...out.values()]
}

const fromLedger = (kind: "charge" | "refund", e: LedgerEntry): MoneyRecord => ({
  kind,
  key: e.idempotencyKey,
  orderId: e.orderId,
  amountMinor: e.amountMinor.toString(),
  currency: e.currency,
  outcome: e.outcome
})

const id = (kind: string, key: string) => `${kind}/${key}`

export const makeReconciler = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const store = yield* EventStore
  const gateway = yield* PaymentGateway
  const { graceMs } = yield* Effect.orDie(ReconcileConfig)

  /** The orders with a charge or refund result recorded in [since, until): their whole streams' records. */
  const oursInWindow = (since: Date, until: Date) =>
    sql<{ stream_id: string; type: string; schema_version: number; data: unknown }>`
      SELECT stream_id::text AS stream_id, type, schema_version, data FROM events
      WHERE stream_id IN (
        SELECT DISTINCT stream_id FROM events
        WHERE recorded_at >= ${since.toISOString()}::timestamptz AND recorded_at < ${until.toISOString()}::timestamptz
          AND type IN ('OrderPaid', 'OrderFailed', 'RefundSucceeded', 'RefundFailed'))
      ORDER BY stream_id, version`.pipe(
      orStoreError,
      Effect.map((rows) => {
        const byOrder = new Map<string, Array<OrderEvent>>()
        for (const row of rows) {
          const events = byOrder.get(row.stream_id) ?? []
          events.push(decodeEvent(row.type, row.schema_version, row.data))
          byOrder.set(row.stream_id, events)
        }
        return [...byOrder].flatMap(([orderId, events]) => recordsOf(orderId, events))
      })
    )

  return (since: Date): Effect.Effect<ReconciliationReport, PaymentUnavailable | StoreError> =>
    Effect.gen(function*() {
      const until = new Date((yield* Clock.currentTimeMillis) - graceMs)
      const ours = new Map<string, MoneyRecord>()
      for (const r of yield* oursInWindow(since, until)) ours.set(id(r.kind, r.key), r)
      const ledger = yield* gateway.ledger(since)
      const theirs = new Map<string, MoneyRecord>()
      for (const c of ledger.charges) if (c.createdAt < until) theirs.set(id("charge", c.idempotencyKey), fromLedger("charge", c))
      for (const r of ledger.refunds) if (r.createdAt < until) theirs.set(id("refund", r.idempotencyKey), fromLedger("refund", r))
      const checked = { ours: ours.size, theirs: theirs.size }

      // the provider's records we have no match for in the window: their orders' streams (recorded earlier)
      const unmatchedOrders = new Set([...theirs].flatMap(([k, r]) => ours.has(k) ? [] : [r.orderId]))
      // orders with refunds: their charge too, for the totals
      for (const r of [...theirs.values(), ...ours.values()]) if (r.kind === "refund") unmatchedOrders.add(r.orderId)
      yield* Effect.forEach(unmatchedOrders, (orderId) =>
        Effect.map(store.readStream(orderId as OrderId), (events) => {
          for (const r of recordsOf(orderId, events.map((e) => e.event))) if (!ours.has(id(r.kind, r.key))) ours.set(id(r.kind, r.key), r)
        }), { concurrency: 8, discard: true })
      // ours the listing lacks (made before the window), settled or parked: asked for by key
      yield* Effect.forEach([...ours.values()].filter((r) => !theirs.has(id(r.kind, r.key)) && (r.outcome !== "pending" || r.parked)), (r) =>
        Effect.map(gateway.find(r.kind, r.key), (found) => {
          if (found !== undefined) theirs.set(id(r.kind, r.key), fromLedger(r.kind, found))
        }), { concurrency: 8, discard: true })

      const differences: Array<Difference> = []
      const differ = (kind: DifferenceKind, key: string, mine: MoneyRecord | undefined, other: MoneyRecord | undefined, message: string) =>
        differences.push({
          kind,
          record: (mine ?? other)!.kind,
          key,
          orderId: (mine ?? other)!.orderId,
          ours: mine ?? null,
          theirs: other ?? null,
          message
        })
      for (const k of new Set([...ours.keys(), ...theirs.keys()])) {
        const mine = ours.get(k)
        const other = theirs.get(k)
        const key = (mine ?? other)!.key
        const what = (mine ?? other)!.kind
        if (mine?.outcome === "pending") {
          // awaiting its answer (retried durably): in flight, not a difference — unless it is parked and the
          // provider made it (the operator's replay would record it)
          if (mine.parked && other?.outcome === "succeeded") {
            differ("missing_on_our_side", key, mine, other, `the provider made a ${what} we have parked as pending: replay its dead letter`)
          }
          continue
        }
        if (other?.outcome === "succeeded" && mine === undefined) {
          differ("missing_on_our_side", key, mine, other, `the provider holds a ${what} we have no result recorded for`)
        } else if (mine?.outcome === "succeeded" && other === undefined) {
          differ("missing_on_their_side", key, mine, other, `we recorded a ${what} the provider has no record of`)
        } else if (mine !== undefined && other !== undefined && (mine.outcome === "succeeded") !== (other.outcome === "succeeded")) {
          differ("outcome_differs", key, mine, other, `we recorded ${mine.outcome}, the provider ${other.outcome}`)
        } else if (mine?.outcome === "succeeded" && other !== undefined && (mine.amountMinor !== other.amountMinor || mine.currency !== other.currency)) {
          differ("amount_differs", key, mine, other, `we recorded ${mine.amountMinor} ${mine.currency}, the provider ${other.amountMinor} ${other.currency}`)
        }
      }
      // refund totals against the charge, on each side
      for (const [side, records] of [["ours", ours], ["theirs", theirs]] as const) {
        const charged = new Map<string, bigint>()
        const refunded = new Map<string, bigint>()
        for (const r of records.values()) {
          if (r.outcome !== "succeeded") continue
          const into = r.kind === "charge" ? charged : refunded
          into.set(r.orderId, (into.get(r.orderId) ?? 0n) + BigInt(r.amountMinor))
        }
        for (const [orderId, total] of refunded) {
          const charge = charged.get(orderId)
          if (charge !== undefined && total > charge) {
            differences.push({
              kind: "refunds_exceed_charge",
              record: "order",
              key: orderId,
              orderId,
              ours: null,
              theirs: null,
              message: `${side === "ours" ? "our log" : "the provider"}: refunds of ${total} above the charge of ${charge}`
            })
          }
        }
      }
      return { since: since.toISOString(), until: until.toISOString(), checked, differences }
    })
})

/** The worker's periodic run: every RECONCILE_INTERVAL_MS over the last RECONCILE_WINDOW; a failed run is
 * logged and counted, and tried again at the next interval. */
export const ReconciliationLive = Layer.scopedDiscard(
  Effect.gen(function*() {
    const config = yield* Effect.orDie(ReconcileConfig)
    const reconcile = yield* makeReconciler
    yield* Metric.set(reconciliationDifferences, 0)
    for (const outcome of ["clean", "differences", "failed"]) yield* Metric.incrementBy(Metric.tagged(reconciliationRuns, "outcome", outcome), 0)
    const run = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const report = yield* reconcile(new Date(now - Duration.toMillis(config.window)))
      yield* Metric.set(reconciliationDifferences, report.differences.length)
      yield* Metric.increment(Metric.tagged(reconciliationRuns, "outcome", report.differences.length === 0 ? "clean" : "differences"))
      const line = report.differences.length === 0
        ? Effect.logInfo("reconciliation: the log agrees with the provider")
        : Effect.logError("reconciliation: the log and the provider differ")
      yield* line.pipe(Effect.annotateLogs({
        type: "RECONCILIATION",
        since: report.since,
        until: report.until,
        checked: report.checked.ours + report.checked.theirs,
        differences: report.differences.length,
        ...(report.differences.length === 0 ? {} : { first: report.differences.slice(0, 10) })
      }))
    }).pipe(Effect.catchAllCause((cause) =>
      Cause.isInterruptedOnly(cause) ? Effect.failCause(cause) : Effect.logWarning("reconciliation failed; tried again at the next interval").pipe(
        Effect.annotateLogs({ type: "RECONCILIATION", outcome: "failed", error: Cause.pretty(cause).slice(0, 500) }),
        Effect.zipRight(Metric.increment(Metric.tagged(reconciliationRuns, "outcome", "failed")))
      )))
    yield* Effect.forkScoped(Effect.schedule(run, Schedule.spaced(Duration.millis(config.intervalMs))))
  })
)
