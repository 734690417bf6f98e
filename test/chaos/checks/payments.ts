/**
 * Payment checks against the provider's ledger (provider_charges): at most one successful charge per order,
 * PAID exactly when one succeeded, none for a CANCELLED order, and every charge for the order's amount.
 */
import { check, type CheckInput, type CheckResult } from "./common.js"

// 4. charges: at most one successful per order; PAID ⇔ one; none for CANCELLED; amount matches
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
      if (ok.length >= 1 && order.status !== "PAID") failures.push(`${id} has a successful charge but is ${order.status}`)
      if (order.status === "CANCELLED") failures.push(`${id} is CANCELLED but has ${cs.length} charge(s) (${cs.map((c) => c.outcome).join(",")})`)
      for (const c of cs) {
        if (c.amount_minor !== order.amount_minor || c.currency.trim() !== order.currency.trim()) {
          failures.push(`${id} charged ${c.amount_minor} ${c.currency} but the order is ${order.amount_minor} ${order.currency}`)
        }
      }
    }
  }
  for (const o of db.orders) {
    if (o.status === "PAID" && !(byOrder.get(o.order_id) ?? []).some((c) => c.outcome === "succeeded")) {
      failures.push(`${o.order_id} is PAID without a successful charge`)
    }
  }
  return check("charges: at most one per order, PAID ⇔ one success, none if CANCELLED", failures,
    `${db.charges.length} charges for ${byOrder.size} orders; double charges ${double}`, { charges: db.charges.length, doubleCharges: double }, failures.map((f) => f.split(" ")[0]!))
}
