/**
 * The checker: after healing and quiescence, every promise of docs/ARCHITECTURE.md "Invariants" that can be
 * seen from outside — from PostgreSQL (events, orders, outbox, idempotency_keys, dead_letters, stats tables,
 * and the provider's ledger provider_charges), from the topics themselves and from what the clients were
 * answered. Each check: ok / fail, counts, and sample evidence (order ids, keys) to look up in the logs.
 */
import pg from "pg"
import type { SeenMessage } from "./kafkaio.js"
import type { Exchange, OrderRequest } from "./load.js"
import type { InjectedHostile } from "./nemesis.js"

export interface CheckResult {
  readonly name: string
  readonly ok: boolean
  readonly summary: string
  readonly counts: Record<string, number>
  /** ids (order ids, keys, offsets) to grep for in the logs */
  readonly samples: ReadonlyArray<string>
  readonly details: ReadonlyArray<string>
}

export interface Observed {
  readonly exchanges: ReadonlyArray<Exchange>
  readonly requests: ReadonlyMap<string, OrderRequest>
  readonly hostile: ReadonlyArray<InjectedHostile>
  readonly topic: ReadonlyArray<SeenMessage>
  readonly dlqTopic: ReadonlyArray<SeenMessage>
  readonly topicComplete: boolean
  readonly termResults: ReadonlyArray<{ role: string; exitedInMs: number | null }>
  readonly termDeadlineMs: number
  /** IDEMPOTENCY_LEASE_MS of the roles */
  readonly leaseMs: number
  readonly verify: { code: number; differences: number | null; output: string }
  readonly quiescence: { reached: boolean; seconds: number; boundSeconds: number }
  readonly eventsTopic: string
}

interface EventRow {
  position: string
  stream_id: string
  version: number
  event_id: string
  type: string
  data: Record<string, any>
}

const TRANSITIONS: Record<string, readonly [string | null, string]> = {
  OrderPlaced: [null, "CREATED"],
  PaymentRequested: ["CREATED", "PAYMENT_PENDING"],
  // a durable retry of the pending payment: the state stays PAYMENT_PENDING
  PaymentRetryScheduled: ["PAYMENT_PENDING", "PAYMENT_PENDING"],
  OrderPaid: ["PAYMENT_PENDING", "PAID"],
  OrderFailed: ["PAYMENT_PENDING", "FAILED"],
  OrderCancelled: ["CREATED", "CANCELLED"]
}
const TERMINAL = new Set(["PAID", "FAILED", "CANCELLED"])

const check = (name: string, failures: ReadonlyArray<string>, summary: string, counts: Record<string, number>, samples: ReadonlyArray<string> = [], details: ReadonlyArray<string> = []): CheckResult => ({
  name,
  ok: failures.length === 0,
  summary: failures.length === 0 ? summary : `${summary} — ${failures.length} failure(s)`,
  counts,
  samples: samples.slice(0, 5),
  details: [...failures.slice(0, 15), ...(failures.length > 15 ? [`… and ${failures.length - 15} more`] : []), ...details]
})

export const loadDatabase = async (databaseUrl: string) => {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    const q = async <R>(text: string) => (await client.query(text)).rows as Array<R>
    return {
      events: await q<EventRow>("SELECT e.position::text AS position, e.stream_id::text AS stream_id, e.version, e.event_id::text AS event_id, e.type, e.data FROM events e ORDER BY e.stream_id, e.version"),
      orders: await q<{ order_id: string; status: string; version: number; amount_minor: string; currency: string }>(
        "SELECT order_id::text, status, version, amount_minor::text, currency FROM orders"
      ),
      unpublished: await q<{ position: string; stream_id: string }>("SELECT o.position::text AS position, o.stream_id::text AS stream_id FROM outbox o WHERE o.published_at IS NULL ORDER BY o.position"),
      outboxRows: Number((await q<{ n: string }>("SELECT count(*)::text AS n FROM outbox"))[0]!.n),
      keys: await q<{ key: string; status: string; response_status: number | null; response_body: any; locked_at: Date }>(
        "SELECT key, status, response_status, response_body, locked_at FROM idempotency_keys"
      ),
      charges: await q<{ idempotency_key: string; order_id: string; amount_minor: string; currency: string; outcome: string }>(
        "SELECT idempotency_key, order_id::text, amount_minor::text, currency, outcome FROM provider_charges"
      ),
      deadLetters: await q<{ id: string; topic: string; partition: number; offset: string; value_bytes: Buffer | null; status: string; error: string }>(
        "SELECT id::text, topic, partition, \"offset\", value_bytes, status, error FROM dead_letters ORDER BY id"
      ),
      statsByState: await q<{ status: string; orders: string }>("SELECT status, orders::text FROM stats_orders_by_state"),
      statsRevenue: await q<{ currency: string; day: string; paid_orders: string; revenue_minor: string }>(
        "SELECT currency, day::text AS day, paid_orders::text, revenue_minor::text FROM stats_revenue_daily"
      )
    }
  } finally {
    await client.end()
  }
}
export type DatabaseSnapshot = Awaited<ReturnType<typeof loadDatabase>>

export const runChecks = (db: DatabaseSnapshot, seen: Observed): Array<CheckResult> => {
  const results: Array<CheckResult> = []
  const streams = new Map<string, Array<EventRow>>()
  for (const e of db.events) {
    const s = streams.get(e.stream_id) ?? []
    s.push(e)
    streams.set(e.stream_id, s)
  }
  const ordersById = new Map(db.orders.map((o) => [o.order_id, o]))
  const orderPosts = seen.exchanges.filter((e) => e.purpose !== "cancel")
  const byKey = new Map<string, Array<Exchange>>()
  for (const e of orderPosts) {
    const l = byKey.get(e.key) ?? []
    l.push(e)
    byKey.set(e.key, l)
  }
  const orderIdOf = (e: Exchange) => (e.body as { orderId?: string } | null)?.orderId

  // 1. every acknowledged order exists, in the log and in the projection
  {
    const acked = new Map<string, string>()
    for (const e of orderPosts) if (e.status === 201 && orderIdOf(e)) acked.set(orderIdOf(e)!, e.key)
    const failures: Array<string> = []
    for (const [orderId, key] of acked) {
      if (!streams.has(orderId)) failures.push(`acknowledged ${orderId} (key ${key}) is not in the log`)
      else if (!ordersById.has(orderId)) failures.push(`acknowledged ${orderId} (key ${key}) is in the log but not in the orders table`)
    }
    results.push(check("acked orders exist", failures, `${acked.size} orders acknowledged (201), lost ${failures.length}`, { acked: acked.size, lost: failures.length }, failures.map((f) => f.split(" ")[1]!)))
  }

  // 2. no order nobody was told about, except for requests that got no answer
  {
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
    results.push(check("no unacknowledged orders", failures, `${streams.size} orders in the log; ${unanswered} created by requests that got no answer (reported apart, allowed)`, { orders: streams.size, fromUnanswered: unanswered, phantom: failures.length }, failures.map((f) => f.split(" ")[0]!)))
  }

  // 3. liveness: every order terminal within the bound after healing
  {
    const stuck = new Map<string, Array<string>>()
    for (const [id, events] of streams) {
      let state: string | null = null
      for (const e of events) state = TRANSITIONS[e.type]?.[1] ?? state
      const projected = ordersById.get(id)?.status
      if (!state || !TERMINAL.has(state) || !projected || !TERMINAL.has(projected)) {
        const s = `${state ?? "none"}${projected && projected !== state ? `/projection ${projected}` : ""}`
        stuck.set(s, [...(stuck.get(s) ?? []), id])
      }
    }
    const failures = [...stuck].flatMap(([s, ids]) => ids.map((id) => `${id} stuck in ${s}`))
    const q = seen.quiescence
    results.push(check(
      "liveness: every order PAID, FAILED or CANCELLED",
      failures,
      `bound ${q.boundSeconds} s after healing; ${q.reached ? `quiescent after ${q.seconds.toFixed(1)} s` : "NOT quiescent within the bound"}; stuck ${failures.length}` +
        (stuck.size ? ` (${[...stuck].map(([s, ids]) => `${ids.length} ${s}`).join(", ")})` : ""),
      { stuck: failures.length, ...Object.fromEntries([...stuck].map(([s, ids]) => [`stuck ${s}`, ids.length])) },
      [...stuck.values()].flatMap((ids) => ids.slice(0, 2))
    ))
  }

  // 4. charges: at most one successful per order; PAID ⇔ one; none for CANCELLED; amount matches
  {
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
    results.push(check("charges: at most one per order, PAID ⇔ one success, none if CANCELLED", failures,
      `${db.charges.length} charges for ${byOrder.size} orders; double charges ${double}`, { charges: db.charges.length, doubleCharges: double }, failures.map((f) => f.split(" ")[0]!)))
  }

  // 5. streams: versions 1..n, unique event ids, legal transitions
  {
    const gaps: Array<string> = []
    const illegal: Array<string> = []
    const ids = new Set<string>()
    let duplicateIds = 0
    for (const [id, events] of streams) {
      let state: string | null = null
      events.forEach((e, i) => {
        if (e.version !== i + 1) gaps.push(`${id}: event ${i + 1} has version ${e.version}`)
        if (ids.has(e.event_id)) duplicateIds++
        ids.add(e.event_id)
        const t = TRANSITIONS[e.type]
        if (!t || t[0] !== state) illegal.push(`${id} v${e.version}: ${e.type} from ${state ?? "nothing"}`)
        else state = t[1]
      })
    }
    results.push(check("streams: versions 1..n, event ids unique", [...gaps, ...(duplicateIds ? [`${duplicateIds} duplicate event ids`] : [])],
      `${streams.size} streams, ${db.events.length} events; gaps ${gaps.length}`, { streams: streams.size, events: db.events.length, gaps: gaps.length, duplicateEventIds: duplicateIds }, gaps.map((g) => g.split(":")[0]!)))
    results.push(check("every transition legal", illegal, `illegal transitions ${illegal.length}`, { illegal: illegal.length }, illegal.map((g) => g.split(" ")[0]!)))
  }

  // 6. outbox
  results.push(check("every outbox row published", db.unpublished.map((r) => `outbox position ${r.position} (order ${r.stream_id}) unpublished`),
    `${db.outboxRows} outbox rows; unpublished ${db.unpublished.length}`, { outbox: db.outboxRows, unpublished: db.unpublished.length }, db.unpublished.map((r) => r.stream_id)))

  // 7. topic: each order's events on one partition, in version order (duplicates allowed), every event there
  {
    const failures: Array<string> = []
    const perOrder = new Map<string, { partitions: Set<number>; versions: Array<number> }>()
    const onTopic = new Set<string>()
    let unreadable = 0
    for (const m of seen.topic) {
      if (m.headers["chaos-hostile"]) continue
      let env: any
      try {
        env = JSON.parse(m.value?.toString() ?? "")
      } catch {
        unreadable++
        continue
      }
      if (typeof env?.orderId !== "string" || typeof env?.version !== "number") {
        unreadable++
        continue
      }
      if (m.key?.toString() !== env.orderId) failures.push(`message at ${m.partition}/${m.offset}: key ${m.key?.toString()} is not its order ${env.orderId}`)
      onTopic.add(env.eventId)
      const p = perOrder.get(env.orderId) ?? { partitions: new Set(), versions: [] }
      p.partitions.add(m.partition)
      p.versions.push(env.version)
      perOrder.set(env.orderId, p)
    }
    for (const [id, p] of perOrder) {
      if (p.partitions.size > 1) failures.push(`${id} on partitions ${[...p.partitions].join(",")}`)
      // first occurrences must come in version order (a later duplicate of an earlier version is allowed)
      let max = 0
      for (const v of p.versions) {
        if (v > max + 1) {
          failures.push(`${id}: version ${v} reached the topic before version ${max + 1} (order ${p.versions.join(",")})`)
          break
        }
        max = Math.max(max, v)
      }
    }
    const missing = db.events.filter((e) => !onTopic.has(e.event_id))
    for (const e of missing.slice(0, 50)) failures.push(`${e.stream_id} v${e.version} ${e.type} (event ${e.event_id}) is not on the topic`)
    if (missing.length > 50) failures.push(`${missing.length} events in all are not on the topic`)
    if (!seen.topicComplete) failures.push("the topic could not be read to its end within the time limit")
    results.push(check("topic: per order one partition, version order, every event published", failures,
      `${seen.topic.length} messages read (${unreadable} not envelopes besides the hostile ones), ${perOrder.size} orders, ${missing.length} events missing`,
      { messages: seen.topic.length, orders: perOrder.size, missing: missing.length, outOfOrder: failures.filter((f) => f.includes("before version")).length },
      failures.map((f) => f.split(" ")[0]!.replace(/:$/, ""))))
  }

  // 8. projections verify
  results.push(check("projections verify clean", seen.verify.code === 0 && seen.verify.differences === 0 ? [] : [`verify exit ${seen.verify.code}, differences ${seen.verify.differences}: ${seen.verify.output.slice(0, 600)}`],
    `verify diffs ${seen.verify.differences ?? "?"}`, { verifyDiffs: seen.verify.differences ?? -1 }))

  // 9. stats projection = figures recomputed from the log
  {
    const failures: Array<string> = []
    const byState = new Map<string, number>()
    const revenue = new Map<string, { paid: number; minor: bigint }>()
    for (const events of streams.values()) {
      let state: string | null = null
      const placed = events.find((e) => e.type === "OrderPlaced")
      for (const e of events) {
        state = TRANSITIONS[e.type]?.[1] ?? state
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
    results.push(check("stats projection equals the log", failures, `${byState.size} states, ${revenue.size} currency-days compared`, { differences: failures.length }))
  }

  // 10. Idempotency-Keys
  {
    const failures: Array<string> = []
    let retried = 0
    let stuckAfter5xx = 0
    const keyRows = new Map(db.keys.map((k) => [k.key, k]))
    for (const [key, ex] of byKey) {
      const ids = new Set(ex.filter((e) => e.status === 201 || e.status === 200).map(orderIdOf))
      if (ids.size > 1) failures.push(`${key}: answered with ${ids.size} different orders (${[...ids].join(", ")})`)
      if (ex.length > 1) retried++
      for (const e of ex) {
        if (e.status === 422) failures.push(`${key}: the same body was refused 422 on ${e.purpose}: ${JSON.stringify(e.body).slice(0, 200)}`)
        if (e.purpose === "retry-after-5xx" && e.status === 409) {
          stuckAfter5xx++
          failures.push(`${key}: retried at once after a 5xx answer and got 409 (the failed request left its key claimed): ${JSON.stringify(e.body).slice(0, 200)}`)
        }
        if (e.purpose === "retry-unanswered" && e.status === 409) {
          // the lease runs from the server's claim, which may come seconds after the client sent
          const claimed = keyRows.get(key)?.locked_at.getTime() ?? 0
          if (e.sentAt >= claimed + seen.leaseMs) failures.push(`${key}: still 409 after healing and the lease (key stuck in flight)`)
        }
      }
    }
    const counts = new Map<string, number>()
    for (const k of db.keys) {
      const id = k.response_body?.orderId
      if (k.status === "in_flight") failures.push(`${k.key}: left claimed (in_flight) after quiescence by a request that did not complete (claimed ${k.locked_at.toISOString()})`)
      else if (typeof id === "string") counts.set(id, (counts.get(id) ?? 0) + 1)
    }
    for (const [id, n] of counts) if (n > 1) failures.push(`order ${id} is the answer of ${n} keys`)
    for (const k of db.keys) {
      const id = k.response_body?.orderId
      if (k.status === "completed" && typeof id === "string" && !streams.has(id)) failures.push(`${k.key}: completed with order ${id}, which is not in the log`)
    }
    results.push(check("Idempotency-Keys: one order each, retries answered the first response", failures,
      `${db.keys.length} keys, ${retried} sent more than once, ${stuckAfter5xx} stuck after a 5xx`, { keys: db.keys.length, retried, stuckAfter5xx, inFlight: db.keys.filter((k) => k.status === "in_flight").length },
      failures.map((f) => f.split(":")[0]!)))
  }

  // 11. no 500, 503 only with Retry-After, no empty error
  {
    const failures: Array<string> = []
    const byStatus = new Map<string, number>()
    for (const e of seen.exchanges) {
      const s = e.status === null ? "no answer" : String(e.status)
      byStatus.set(s, (byStatus.get(s) ?? 0) + 1)
      // an infrastructure failure (a terminated database connection, a killed broker) is answered 503 with
      // Retry-After and a tagged body (invariant 11): honest, and retried by the client; any other 5xx fails
      const honest503 = e.status === 503 && typeof e.retryAfter === "string" && typeof (e.body as any)?._tag === "string"
      if (e.status !== null && e.status >= 500 && !honest503) {
        failures.push(`${e.key} (${e.purpose}) → ${e.status} from ${e.api}${e.status === 503 ? " without Retry-After or a tagged body" : ""}: ${JSON.stringify(e.body).slice(0, 200)}`)
      }
      else if (e.status !== null && e.status >= 400 && (e.body === null || typeof (e.body as any)?._tag !== "string")) {
        failures.push(`${e.key} (${e.purpose}) → ${e.status} without a tagged error body: ${JSON.stringify(e.body).slice(0, 200)}`)
      }
    }
    results.push(check("HTTP: no 500, a 503 only with Retry-After, no empty error", failures, [...byStatus].sort().map(([s, n]) => `${s}: ${n}`).join(", "),
      Object.fromEntries(byStatus), failures.map((f) => f.split(" ")[0]!)))
  }

  // 12. hostile messages parked with their exact bytes
  {
    const failures: Array<string> = []
    for (const h of seen.hostile) {
      const dl = db.deadLetters.find((d) => d.topic === seen.eventsTopic && d.partition === h.partition && d.offset === h.offset)
      if (!dl) failures.push(`${h.partition}/${h.offset} ${h.variant} (${h.bytes.length} bytes, key ${h.key}) is not parked`)
      else if (dl.value_bytes === null || !Buffer.from(dl.value_bytes).equals(h.bytes)) {
        failures.push(`${h.partition}/${h.offset} ${h.variant}: parked, but its value is not the message's bytes (${h.bytes.length} bytes sent, ${dl.value_bytes?.length ?? "null"} stored)`)
      }
    }
    results.push(check("hostile messages parked with their bytes", failures, `${seen.hostile.length} injected, ${seen.hostile.length - failures.length} parked intact`,
      { injected: seen.hostile.length, notParked: failures.filter((f) => f.includes("not parked")).length, altered: failures.filter((f) => f.includes("not the message")).length },
      seen.hostile.filter((h) => failures.some((f) => f.startsWith(`${h.partition}/${h.offset} `))).map((h) => h.key)))
  }

  // 13. no dead letter lost: the table and the dead-letter topic name the same source messages
  {
    const failures: Array<string> = []
    const inTable = new Set(db.deadLetters.map((d) => `${d.topic}/${d.partition}/${d.offset}`))
    const onTopic = new Set(seen.dlqTopic.map((m) => m.headers["dlq-source"]).filter((s): s is string => !!s))
    for (const s of inTable) if (!onTopic.has(s)) failures.push(`${s} parked in the table but not on the dead-letter topic`)
    for (const s of onTopic) if (!inTable.has(s)) failures.push(`${s} on the dead-letter topic but not in the table`)
    results.push(check("no dead letter lost (table ⇔ topic)", failures, `${db.deadLetters.length} rows, ${seen.dlqTopic.length} messages on the dead-letter topic`,
      { rows: db.deadLetters.length, dlqMessages: seen.dlqTopic.length }))
  }

  // 14. graceful shutdown within the deadline
  {
    const failures = seen.termResults.filter((t) => t.exitedInMs === null).map((t) => `${t.role} did not exit within ${seen.termDeadlineMs} ms of SIGTERM`)
    results.push(check("SIGTERM: every role exits within the deadline", failures, `${seen.termResults.length} SIGTERMs`, { sigterms: seen.termResults.length, hung: failures.length }))
  }
  return results
}
