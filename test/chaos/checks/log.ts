/**
 * Safety and liveness checks on the log and the projections: every acknowledged order exists, no order nobody
 * was told about, every order terminal within the bound, streams well formed with legal transitions, the
 * outbox drained, `projections verify` clean, the stats projection equal to the log; and every role's
 * SIGTERM obeyed within the deadline.
 */
import { check, type CheckInput, type CheckResult, settled, TERMINAL, walk } from "./common.js"

// 1. every acknowledged order exists, in the log and in the projection
export const ackedOrdersExist = ({ orderPosts, orderIdOf, streams, ordersById }: CheckInput): CheckResult => {
  const acked = new Map<string, string>()
  for (const e of orderPosts) if (e.status === 201 && orderIdOf(e)) acked.set(orderIdOf(e)!, e.key)
  const failures: Array<string> = []
  for (const [orderId, key] of acked) {
    if (!streams.has(orderId)) failures.push(`acknowledged ${orderId} (key ${key}) is not in the log`)
    else if (!ordersById.has(orderId)) failures.push(`acknowledged ${orderId} (key ${key}) is in the log but not in the orders table`)
  }
  return check("acked orders exist", failures, `${acked.size} orders acknowledged (201), lost ${failures.length}`, { acked: acked.size, lost: failures.length }, failures.map((f) => f.split(" ")[1]!))
}

// 2. no order nobody was told about, except for requests that got no answer
export const noUnacknowledgedOrders = ({ db, streams, byKey, orderIdOf }: CheckInput): CheckResult => {
  const keyOfOrder = new Map<string, string>()
  for (const k of db.keys) {
    const id = k.response_body?.orderId
    if (typeof id === "string") keyOfOrder.set(id, k.key)
  }
  const failures: Array<string> = []
  let unanswered = 0
  for (const orderId of streams.keys()) {
    const key = keyOfOrder.get(orderId)
    if (!key) {
      failures.push(`${orderId} has no Idempotency-Key record (every request carried a key)`)
      continue
    }
    const ex = byKey.get(key) ?? []
    if (ex.some((e) => e.status !== null && e.status >= 200 && e.status < 300 && orderIdOf(e) === orderId)) continue
    if (ex.some((e) => e.status === null || e.status >= 500)) unanswered++
    else failures.push(`${orderId} (key ${key}) exists, but its requests were answered ${ex.map((e) => e.status).join(",")}`)
  }
  return check("no unacknowledged orders", failures, `${streams.size} orders in the log; ${unanswered} created by requests that got no answer (reported apart, allowed)`, { orders: streams.size, fromUnanswered: unanswered, phantom: failures.length }, failures.map((f) => f.split(" ")[0]!))
}

// 3. liveness: every order terminal within the bound after healing
export const liveness = ({ streams, ordersById, seen }: CheckInput): CheckResult => {
  const stuck = new Map<string, Array<string>>()
  for (const [id, events] of streams) {
    const walked = walk(events).state
    const state = walked.status
    const projected = ordersById.get(id)?.status
    if (!settled(walked) || !projected || !TERMINAL.has(projected)) {
      const pending = [...walked.refunds.values()].filter((r) => r.status === "pending")
      const s = `${state ?? "none"}${projected && projected !== state ? `/projection ${projected}` : ""}` +
        (pending.length > 0 ? ` with ${pending.length} refund(s) pending${pending.some((r) => r.parked) ? " (parked)" : ""}` : "")
      stuck.set(s, [...(stuck.get(s) ?? []), id])
    }
  }
  const failures = [...stuck].flatMap(([s, ids]) => ids.map((id) => `${id} stuck in ${s}`))
  const q = seen.quiescence
  return check(
    "liveness: every order PAID, FAILED or CANCELLED",
    failures,
    `bound ${q.boundSeconds} s after healing; ${q.reached ? `quiescent after ${q.seconds.toFixed(1)} s` : "NOT quiescent within the bound"}; stuck ${failures.length}` +
      (stuck.size ? ` (${[...stuck].map(([s, ids]) => `${ids.length} ${s}`).join(", ")})` : ""),
    { stuck: failures.length, ...Object.fromEntries([...stuck].map(([s, ids]) => [`stuck ${s}`, ids.length])) },
    [...stuck.values()].flatMap((ids) => ids.slice(0, 2))
  )
}

// 5. streams: versions 1..n, unique event ids, legal transitions
export const streamsWellFormed = ({ db, streams }: CheckInput): Array<CheckResult> => {
  const gaps: Array<string> = []
  const illegal: Array<string> = []
  const ids = new Set<string>()
  let duplicateIds = 0
  for (const [id, events] of streams) {
    events.forEach((e, i) => {
      if (e.version !== i + 1) gaps.push(`${id}: event ${i + 1} has version ${e.version}`)
      if (ids.has(e.event_id)) duplicateIds++
      ids.add(e.event_id)
    })
    for (const why of walk(events).illegal) illegal.push(`${id} ${why}`)
  }
  return [
    check("streams: versions 1..n, event ids unique", [...gaps, ...(duplicateIds ? [`${duplicateIds} duplicate event ids`] : [])],
      `${streams.size} streams, ${db.events.length} events; gaps ${gaps.length}`, { streams: streams.size, events: db.events.length, gaps: gaps.length, duplicateEventIds: duplicateIds }, gaps.map((g) => g.split(":")[0]!)),
    check("every transition legal", illegal, `illegal transitions ${illegal.length}`, { illegal: illegal.length }, illegal.map((g) => g.split(" ")[0]!))
  ]
}

// 6. outbox
export const outboxPublished = ({ db }: CheckInput): CheckResult => {
  return check("every outbox row published", db.unpublished.map((r) => `outbox position ${r.position} (order ${r.stream_id}) unpublished`),
    `${db.outboxRows} outbox rows; unpublished ${db.unpublished.length}`, { outbox: db.outboxRows, unpublished: db.unpublished.length }, db.unpublished.map((r) => r.stream_id))
}

// 8. projections verify
export const projectionsVerify = ({ seen }: CheckInput): CheckResult => {
  return check("projections verify clean", seen.verify.code === 0 && seen.verify.differences === 0 ? [] : [`verify exit ${seen.verify.code}, differences ${seen.verify.differences}`, ...verifyDifferences(seen.verify.output)],
    `verify diffs ${seen.verify.differences ?? "?"}`, { verifyDiffs: seen.verify.differences ?? -1 })
}

/** Per differing order, the fields that differ (live row against the fold of the log), from verify's JSON. */
export const verifyDifferences = (output: string): ReadonlyArray<string> => {
  try {
    const parsed = JSON.parse(output.slice(output.indexOf("{"))) as { orders?: ReadonlyArray<{ orderId: string; live?: Record<string, unknown>; folded?: Record<string, unknown> }> }
    return (parsed.orders ?? []).slice(0, 10).map(({ folded, live, orderId }) => {
      if (live === undefined || folded === undefined) return `order ${orderId}: ${live === undefined ? "no live row" : "not in the log"}`
      const fields = [...new Set([...Object.keys(live), ...Object.keys(folded)])]
        .filter((k) => JSON.stringify(live[k]) !== JSON.stringify(folded[k]))
        .map((k) => `${k}: live ${JSON.stringify(live[k])} folded ${JSON.stringify(folded[k])}`)
      return `order ${orderId} (live version ${JSON.stringify(live.version)}): ${fields.join("; ")}`
    })
  } catch {
    return [output.slice(0, 600)]
  }
}

// 9. stats projection = figures recomputed from the log
export const statsEqualLog = ({ db, streams }: CheckInput): CheckResult => {
  const failures: Array<string> = []
  const byState = new Map<string, number>()
  const revenue = new Map<string, { paid: number; minor: bigint }>()
  const refunded = new Map<string, { refunds: number; minor: bigint }>()
  for (const events of streams.values()) {
    const state = walk(events).state.status
    const placed = events.find((e) => e.type === "OrderPlaced")
    for (const e of events) {
      if (e.type === "RefundSucceeded") {
        const k = `${e.data.amount.currency}/${String(e.data.occurredAt).slice(0, 10)}`
        const r = refunded.get(k) ?? { refunds: 0, minor: 0n }
        r.refunds++
        r.minor += BigInt(e.data.amount.minor)
        refunded.set(k, r)
      }
      if (e.type === "OrderPaid" && placed) {
        const day = String(e.data.occurredAt).slice(0, 10)
        const k = `${placed.data.amount.currency}/${day}`
        const r = revenue.get(k) ?? { paid: 0, minor: 0n }
        r.paid++
        r.minor += BigInt(placed.data.amount.minor)
        revenue.set(k, r)
      }
    }
    if (state) byState.set(state, (byState.get(state) ?? 0) + 1)
  }
  const statsState = new Map(db.statsByState.map((r) => [r.status, Number(r.orders)]))
  for (const s of new Set([...byState.keys(), ...statsState.keys()])) {
    if ((byState.get(s) ?? 0) !== (statsState.get(s) ?? 0)) failures.push(`orders ${s}: log ${byState.get(s) ?? 0}, stats ${statsState.get(s) ?? 0}`)
  }
  const statsRev = new Map(db.statsRevenue.map((r) => [`${r.currency.trim()}/${r.day}`, { paid: Number(r.paid_orders), minor: BigInt(r.revenue_minor) }]))
  for (const k of new Set([...revenue.keys(), ...statsRev.keys()])) {
    const a = revenue.get(k) ?? { paid: 0, minor: 0n }
    const b = statsRev.get(k) ?? { paid: 0, minor: 0n }
    if (a.paid !== b.paid || a.minor !== b.minor) failures.push(`revenue ${k}: log ${a.paid} orders ${a.minor}, stats ${b.paid} orders ${b.minor}`)
  }
  const statsRefunded = new Map(db.statsRevenue.filter((r) => (r.refunds ?? "0") !== "0").map((r) => [`${r.currency.trim()}/${r.day}`, { refunds: Number(r.refunds), minor: BigInt(r.refunded_minor ?? "0") }]))
  for (const k of new Set([...refunded.keys(), ...statsRefunded.keys()])) {
    const a = refunded.get(k) ?? { refunds: 0, minor: 0n }
    const b = statsRefunded.get(k) ?? { refunds: 0, minor: 0n }
    if (a.refunds !== b.refunds || a.minor !== b.minor) failures.push(`refunded ${k}: log ${a.refunds} refunds ${a.minor}, stats ${b.refunds} refunds ${b.minor}`)
  }
  return check("stats projection equals the log", failures, `${byState.size} states, ${revenue.size} currency-days compared`, { differences: failures.length })
}

// 14. graceful shutdown within the deadline
export const sigtermInTime = ({ seen }: CheckInput): CheckResult => {
  const failures = seen.termResults.filter((t) => t.exitedInMs === null).map((t) => `${t.role} did not exit within ${seen.termDeadlineMs} ms of SIGTERM`)
  return check("SIGTERM: every role exits within the deadline", failures, `${seen.termResults.length} SIGTERMs`, { sigterms: seen.termResults.length, hung: failures.length })
}
