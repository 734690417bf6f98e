/**
 * Payment checks against the provider's ledger (provider_charges): at most one successful charge per order,
 * PAID exactly when one succeeded, none for a CANCELLED order, and every charge for the order's amount.
 */
import { check, type CheckInput, type CheckResult, walk } from "./common.js"

const PAID = new Set(["PAID", "PARTIALLY_REFUNDED", "REFUNDED"])

// 4. charges: at most one successful per order; PAID (or refunded) ⇔ one; none for CANCELLED; amount matches
export const charges = ({ db, ordersById }: CheckInput): CheckResult => {
  const byOrder = new Map<string, Array<(typeof db.charges)[number]>>()
  for (const c of db.charges) byOrder.set(c.order_id, [...(byOrder.get(c.order_id) ?? []), c])
  const failures: Array<string> = []
  let double = 0
  for (const [id, cs] of byOrder) {
    const ok = cs.filter((c) => c.outcome === "succeeded")
    const order = ordersById.get(id)
    if (ok.length > 1) {
      double++
      failures.push(`${id} charged ${ok.length} times (keys ${ok.map((c) => c.idempotency_key).join(", ")})`)
    }
    if (!order) failures.push(`${id} was charged but is no order`)
    else {
      if (ok.length >= 1 && !PAID.has(order.status)) failures.push(`${id} has a successful charge but is ${order.status}`)
      if (order.status === "CANCELLED") failures.push(`${id} is CANCELLED but has ${cs.length} charge(s) (${cs.map((c) => c.outcome).join(",")})`)
      for (const c of cs) {
        if (c.amount_minor !== order.amount_minor || c.currency.trim() !== order.currency.trim()) {
          failures.push(`${id} charged ${c.amount_minor} ${c.currency} but the order is ${order.amount_minor} ${order.currency}`)
        }
      }
    }
  }
  for (const o of db.orders) {
    if (PAID.has(o.status) && !(byOrder.get(o.order_id) ?? []).some((c) => c.outcome === "succeeded")) {
      failures.push(`${o.order_id} is PAID without a successful charge`)
    }
  }
  return check("charges: at most one per order, PAID ⇔ one success, none if CANCELLED", failures,
    `${db.charges.length} charges for ${byOrder.size} orders; double charges ${double}`, { charges: db.charges.length, doubleCharges: double }, failures.map((f) => f.split(" ")[0]!))
}

// 4b. refunds: never above the charge; one provider refund per refund id of ours and none under any other key;
// the order's refunded total = the provider's; every accepted refund (202) in the log; reconcile clean
export const refunds = ({ db, seen, streams, ordersById }: CheckInput): CheckResult => {
  const failures: Array<string> = []
  const ours = new Map<string, { orderId: string; minor: bigint; status: string }>()
  for (const [orderId, events] of streams) {
    for (const [refundId, r] of walk(events).state.refunds) ours.set(refundId, { orderId, ...r })
  }
  const providerTotal = new Map<string, bigint>()
  for (const r of db.refunds) {
    const mine = ours.get(r.idempotency_key)
    if (mine === undefined) failures.push(`${r.order_id}: the provider holds a refund under ${r.idempotency_key}, no refund id of ours`)
    else if (BigInt(r.amount_minor) !== mine.minor) failures.push(`${r.order_id}: refund ${r.idempotency_key} ${r.amount_minor} at the provider, ${mine.minor} ours`)
    else if ((r.outcome === "succeeded") !== (mine.status === "succeeded")) failures.push(`${r.order_id}: refund ${r.idempotency_key} ${r.outcome} at the provider, ${mine.status} ours`)
    if (r.outcome === "succeeded") providerTotal.set(r.order_id, (providerTotal.get(r.order_id) ?? 0n) + BigInt(r.amount_minor))
  }
  for (const [orderId, total] of providerTotal) {
    const order = ordersById.get(orderId)
    if (order && total > BigInt(order.amount_minor)) failures.push(`${orderId}: refunds of ${total} above the charge ${order.amount_minor}`)
  }
  for (const o of db.orders) {
    const refunded = BigInt(o.refunded_minor ?? "0")
    if (refunded !== (providerTotal.get(o.order_id) ?? 0n)) failures.push(`${o.order_id}: refunded ${refunded}, the provider ${providerTotal.get(o.order_id) ?? 0n}`)
  }
  let accepted = 0
  for (const e of seen.exchanges) {
    if (e.purpose !== "refund" || e.status !== 202) continue
    accepted++
    const refundId = (e.body as { refundId?: string } | null)?.refundId
    if (!refundId || !ours.has(refundId)) failures.push(`${e.orderId}: refund ${refundId ?? "?"} answered 202 (key ${e.key}) is not in the log`)
  }
  const reconcile = seen.reconcile
  if (reconcile !== undefined && (reconcile.code !== 0 || reconcile.differences !== 0)) {
    failures.push(`reconcile exit ${reconcile.code}, differences ${reconcile.differences}: ${reconcile.output.slice(0, 600)}`)
  }
  const succeeded = [...ours.values()].filter((r) => r.status === "succeeded").length
  return check("refunds: never above the charge, one provider refund per refund id, the log agrees with the provider", failures,
    `${accepted} refunds accepted, ${ours.size} in the log, ${succeeded} succeeded, ${db.refunds.length} at the provider; reconcile ${reconcile ? `exit ${reconcile.code}` : "not run"}`,
    { refunds: ours.size, refundsSucceeded: succeeded, providerRefunds: db.refunds.length, refundFailures: failures.length },
    failures.map((f) => f.split(":")[0]!))
}
