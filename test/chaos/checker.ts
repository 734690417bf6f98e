/**
 * The checker: after healing and quiescence, every promise of docs/ARCHITECTURE.md "Invariants" that can be
 * seen from outside — from PostgreSQL (events, orders, outbox, idempotency_keys, dead_letters, stats tables,
 * and the provider's ledger provider_charges), from the topics themselves and from what the clients were
 * answered. Each check: ok / fail, counts, and sample evidence (order ids, keys) to look up in the logs.
 *
 * This module composes the checks, in their numbered order: the snapshot is read by checks/snapshot.ts, the
 * checks themselves are grouped in checks/ — log.ts (log and projections, liveness, shutdown), payments.ts
 * (the provider's ledger), topics.ts (topic and dead letters), http.ts (answers and Idempotency-Keys),
 * webhooks.ts (the notifier's deliveries against the receiver's record).
 */
import type { CheckInput, CheckResult, Observed } from "./checks/common.js"
import { idempotencyKeys, httpAnswers } from "./checks/http.js"
import {
  ackedOrdersExist,
  liveness,
  noUnacknowledgedOrders,
  outboxPublished,
  projectionsVerify,
  sigtermInTime,
  statsEqualLog,
  streamsWellFormed
} from "./checks/log.js"
import { charges, refunds } from "./checks/payments.js"
import type { DatabaseSnapshot, EventRow } from "./checks/snapshot.js"
import { deadLettersKept, hostileParked, topicOrder } from "./checks/topics.js"
import { webhooks } from "./checks/webhooks.js"
import type { Exchange } from "./load.js"

export type { CheckResult, Observed } from "./checks/common.js"
export { type DatabaseSnapshot, loadDatabase } from "./checks/snapshot.js"

export const runChecks = (db: DatabaseSnapshot, seen: Observed): Array<CheckResult> => {
  const streams = new Map<string, Array<EventRow>>()
  for (const e of db.events) {
    const s = streams.get(e.stream_id) ?? []
    s.push(e)
    streams.set(e.stream_id, s)
  }
  const ordersById = new Map(db.orders.map((o) => [o.order_id, o]))
  const orderPosts = seen.exchanges.filter((e) => e.purpose !== "cancel" && e.purpose !== "refund")
  const byKey = new Map<string, Array<Exchange>>()
  for (const e of orderPosts) {
    const l = byKey.get(e.key) ?? []
    l.push(e)
    byKey.set(e.key, l)
  }
  const orderIdOf = (e: Exchange) => (e.body as { orderId?: string } | null)?.orderId
  const input: CheckInput = { db, seen, streams, ordersById, orderPosts, byKey, orderIdOf }

  return [
    ackedOrdersExist(input), // 1
    noUnacknowledgedOrders(input), // 2
    liveness(input), // 3
    charges(input), // 4
    refunds(input), // 4b
    ...streamsWellFormed(input), // 5
    outboxPublished(input), // 6
    topicOrder(input), // 7
    projectionsVerify(input), // 8
    statsEqualLog(input), // 9
    idempotencyKeys(input), // 10
    httpAnswers(input), // 11
    hostileParked(input), // 12
    deadLettersKept(input), // 13
    sigtermInTime(input), // 14
    webhooks(input) // 15
  ]
}
