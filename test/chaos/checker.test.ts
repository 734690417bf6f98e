/**
 * The chaos checker's own test (runs with `npm test`, in memory): a consistent snapshot passes every check, and
 * each kind of broken promise fails exactly the check that should see it. A checker that cannot fail proves
 * nothing.
 */
import { assert, describe, it } from "@effect/vitest"
import { type DatabaseSnapshot, type Observed, runChecks } from "./checker.js"
import { lagOf, type SeenMessage } from "./kafkaio.js"
import type { Exchange } from "./load.js"
import { verifyDifferences } from "./checks/log.js"

const A = "01a20000-0000-7000-8000-00000000000a"
const B = "01a20000-0000-7000-8000-00000000000b"
const day = "2026-11-25"
const at = `${day}T10:00:00.000Z`

const event = (position: number, stream: string, version: number, type: string, data: Record<string, unknown> = {}) => ({
  position: String(position),
  stream_id: stream,
  version,
  event_id: `${stream.slice(0, -2)}${String(position).padStart(2, "0")}-e`,
  type,
  data: { occurredAt: at, ...data },
  recorded_at: new Date(at)
})

const ALL = "e0000000-0000-4000-8000-0000000000a1"
const PAID_ONLY = "e0000000-0000-4000-8000-0000000000a2"
const registered = new Date("2026-11-25T09:00:00.000Z")
const STATES: Record<string, string> = { OrderPlaced: "CREATED", PaymentRequested: "PAYMENT_PENDING", OrderPaid: "PAID", OrderCancelled: "CANCELLED" }
const TYPES: Record<string, string> = {
  OrderPlaced: "order.placed", PaymentRequested: "order.payment_pending", OrderPaid: "order.paid", OrderCancelled: "order.cancelled",
  RefundRequested: "order.refund_requested", RefundSucceeded: "order.refund_succeeded"
}

/** The notifier's deliveries of `events` to the endpoints "all" (every type) and "paid" (order.paid), each
 * delivered and received once, verified, in order (receipt i at 10:00:00 + i s). */
const webhookRows = (events: ReadonlyArray<{ stream_id: string; version: number; event_id: string; type: string }>) => {
  const deliveries: DatabaseSnapshot["webhookDeliveries"] = []
  for (const e of events) {
    for (const endpoint of e.type === "OrderPaid" ? [ALL, PAID_ONLY] : [ALL]) {
      deliveries.push({
        id: `${endpoint.slice(-2)}-${e.event_id}`, endpoint_id: endpoint, event_id: e.event_id, order_id: e.stream_id, version: e.version,
        event_type: TYPES[e.type]!, status: "delivered", attempts: 1, last_status: 200, last_error: null,
        body_type: TYPES[e.type]!, body_event_id: e.event_id, body_version: e.version, body_state: STATES[e.type] ?? null
      })
    }
  }
  const receipts: DatabaseSnapshot["webhookReceipts"] = deliveries.map((d, i) => ({
    id: String(i + 1), name: d.endpoint_id === ALL ? "all" : "paid", webhook_id: d.id, event_type: d.event_type, order_id: d.order_id,
    version: d.version, event_id: d.event_id, valid: true, answered: 200, received_at: new Date(Date.parse(at) + i * 1000)
  }))
  return { deliveries, receipts }
}

const consistent = (): DatabaseSnapshot => ({
  events: [
    event(1, A, 1, "OrderPlaced", { amount: { minor: "1000", currency: "EUR" } }),
    event(2, A, 2, "PaymentRequested"),
    event(3, A, 3, "OrderPaid"),
    event(4, B, 1, "OrderPlaced", { amount: { minor: "500", currency: "USD" } }),
    event(5, B, 2, "OrderCancelled")
  ],
  orders: [
    { order_id: A, status: "PAID", version: 3, amount_minor: "1000", currency: "EUR" },
    { order_id: B, status: "CANCELLED", version: 2, amount_minor: "500", currency: "USD" }
  ],
  unpublished: [],
  outboxRows: 5,
  keys: [
    { key: "k-a", status: "completed", response_status: 201, response_body: { orderId: A }, locked_at: new Date(at) },
    { key: "k-b", status: "completed", response_status: 201, response_body: { orderId: B }, locked_at: new Date(at) }
  ],
  charges: [{ idempotency_key: "pay-a", order_id: A, amount_minor: "1000", currency: "EUR", outcome: "succeeded" }],
  deadLetters: [{ id: "1", topic: "t.orders.events", partition: 0, offset: "9", value_bytes: Buffer.from("{\"a\":"), status: "parked", error: "undecodable" }],
  refunds: [],
  statsByState: [{ status: "PAID", orders: "1" }, { status: "CANCELLED", orders: "1" }],
  statsRevenue: [{ currency: "EUR", day, paid_orders: "1", revenue_minor: "1000" }],
  ...withWebhooks([
    event(1, A, 1, "OrderPlaced"), event(2, A, 2, "PaymentRequested"), event(3, A, 3, "OrderPaid"),
    event(4, B, 1, "OrderPlaced"), event(5, B, 2, "OrderCancelled")
  ])
})

const withWebhooks = (events: ReadonlyArray<{ stream_id: string; version: number; event_id: string; type: string }>) => {
  const { deliveries, receipts } = webhookRows(events)
  return {
    webhookEndpoints: [
      { id: ALL, url: "http://127.0.0.1:23004/hooks/all", event_types: null, status: "enabled", disabled_reason: null, created_at: registered },
      { id: PAID_ONLY, url: "http://127.0.0.1:23004/hooks/paid", event_types: ["order.paid"], status: "enabled", disabled_reason: null, created_at: registered }
    ],
    webhookDeliveries: deliveries,
    webhookReceipts: receipts,
    notifierInbox: events.map((e) => ({ message_id: e.event_id, processed_at: new Date(at) }))
  }
}

const message = (partition: number, offset: number, e: DatabaseSnapshot["events"][number]): SeenMessage => ({
  partition,
  offset: String(offset),
  key: Buffer.from(e.stream_id),
  value: Buffer.from(JSON.stringify({ eventId: e.event_id, orderId: e.stream_id, version: e.version, type: e.type })),
  headers: {}
})

const exchange = (key: string, status: number | null, body: unknown, purpose: Exchange["purpose"] = "first"): Exchange => ({
  key, purpose, api: "http://api", sentAt: 0, status, body, error: null, answeredAt: 0
})

const observed = (db: DatabaseSnapshot): Observed => ({
  exchanges: [exchange("k-a", 201, { orderId: A }), exchange("k-b", 201, { orderId: B }), exchange("k-a", 201, { orderId: A }, "deliberate-retry")],
  requests: new Map(),
  hostile: [{ variant: "deep-object", key: "h", bytes: Buffer.from("{\"a\":"), partition: 0, offset: "9" }],
  topic: db.events.map((e, i) => message(e.stream_id === A ? 1 : 2, i, e)),
  dlqTopic: [{ partition: 0, offset: "0", key: null, value: null, headers: { "dlq-source": "t.orders.events/0/9" } }],
  topicComplete: true,
  termResults: [{ role: "worker1", exitedInMs: 800 }],
  termDeadlineMs: 15_000,
  leaseMs: 10_000,
  verify: { code: 0, differences: 0, output: "" },
  quiescence: { reached: true, seconds: 2, boundSeconds: 60 },
  eventsTopic: "t.orders.events",
  faultWindows: [],
  apiRoles: new Map([["http://api", "api1"]]),
  clientTimeoutMs: 10_000
})

const IDEMPOTENCY = "Idempotency-Keys: one order each, retries answered the first response, every key succeeds"
const HTTP = "HTTP: no 500, a 503 only with Retry-After, no empty error, no hang through a PostgreSQL fault"

const failing = (db: DatabaseSnapshot, seen: Observed = observed(db)) => runChecks(db, seen).filter((c) => !c.ok).map((c) => c.name)

describe("chaos checker", () => {
  it("passes a consistent snapshot", () => {
    assert.deepStrictEqual(failing(consistent()), [])
  })

  it("sees a lost acknowledged order", () => {
    const db = consistent()
    const seen = observed(db)
    assert.deepStrictEqual(failing(db, { ...seen, exchanges: [...seen.exchanges, exchange("k-c", 201, { orderId: "01a20000-0000-7000-8000-0000000000cc" })] }), ["acked orders exist"])
  })

  it("sees an order stuck in PAYMENT_PENDING", () => {
    const db = consistent()
    db.events = db.events.filter((e) => e.type !== "OrderPaid")
    db.orders[0] = { ...db.orders[0]!, status: "PAYMENT_PENDING", version: 2 }
    db.statsByState[0] = { status: "PAYMENT_PENDING", orders: "1" }
    db.statsRevenue = []
    const names = failing(db, { ...observed(db), topic: observed(consistent()).topic.filter((m) => !m.value!.toString().includes("OrderPaid")) })
    assert.include(names, "liveness: every order PAID, FAILED or CANCELLED")
  })

  it("sees a double charge, and a charge of a cancelled order", () => {
    const db = consistent()
    db.charges.push({ idempotency_key: "pay-a2", order_id: A, amount_minor: "1000", currency: "EUR", outcome: "succeeded" })
    db.charges.push({ idempotency_key: "pay-b", order_id: B, amount_minor: "500", currency: "USD", outcome: "declined" })
    const result = runChecks(db, observed(db)).find((c) => c.name.startsWith("charges"))!
    assert.isFalse(result.ok)
    assert.strictEqual(result.counts.doubleCharges, 1)
    assert.isTrue(result.details.some((d) => d.includes("CANCELLED")))
  })

  it("sees a version gap and an illegal transition", () => {
    const db = consistent()
    db.events[2] = { ...db.events[2]!, version: 4 }
    db.events.push(event(6, B, 3, "OrderPaid"))
    const names = failing(db)
    assert.include(names, "streams: versions 1..n, event ids unique")
    assert.include(names, "every transition legal")
  })

  it("sees an unpublished outbox row and an event missing from the topic", () => {
    const db = consistent()
    db.unpublished = [{ position: "5", stream_id: B }]
    const seen = observed(db)
    const names = failing(db, { ...seen, topic: seen.topic.slice(0, 4) })
    assert.include(names, "every outbox row published")
    assert.include(names, "topic: per order one partition, version order, every event published")
  })

  it("allows a late duplicate on the topic, not a version ahead of its predecessor or a second partition", () => {
    const db = consistent()
    const seen = observed(db)
    assert.deepStrictEqual(failing(db, { ...seen, topic: [...seen.topic, seen.topic[0]!] }), [])
    const swapped = [seen.topic[1]!, seen.topic[0]!, ...seen.topic.slice(2)]
    assert.deepStrictEqual(failing(db, { ...seen, topic: swapped }), ["topic: per order one partition, version order, every event published"])
    const split = seen.topic.map((m, i) => (i === 2 ? { ...m, partition: 5 } : m))
    assert.deepStrictEqual(failing(db, { ...seen, topic: split }), ["topic: per order one partition, version order, every event published"])
  })

  it("sees a stats projection that differs from the log", () => {
    const db = consistent()
    db.statsRevenue = [{ currency: "EUR", day, paid_orders: "2", revenue_minor: "2000" }]
    assert.deepStrictEqual(failing(db), ["stats projection equals the log"])
  })

  it("sees a key answered with two orders, a key stuck after a 5xx, a 5xx and an empty error", () => {
    const db = consistent()
    const seen = observed(db)
    const names = failing(db, {
      ...seen,
      exchanges: [
        ...seen.exchanges,
        exchange("k-a", 201, { orderId: B }, "deliberate-retry"),
        exchange("k-b", 500, null),
        exchange("k-b", 409, { _tag: "IdempotencyKeyInUse", message: "in progress" }, "retry-after-5xx")
      ]
    })
    assert.deepStrictEqual(names, [IDEMPOTENCY, HTTP])
  })

  it("an honest 503 (Retry-After, tagged body) passes; one without Retry-After fails", () => {
    const db = consistent()
    const seen = observed(db)
    const honest = { ...exchange("k-a", 503, { _tag: "ServiceUnavailable", message: "the database is not reachable" }), retryAfter: "1" }
    assert.deepStrictEqual(failing(db, { ...seen, exchanges: [...seen.exchanges, honest] }), [])
    const bare = exchange("k-a", 503, { _tag: "ServiceUnavailable", message: "the database is not reachable" })
    assert.deepStrictEqual(failing(db, { ...seen, exchanges: [...seen.exchanges, bare] }), [HTTP])
  })

  it("sees a request held past the client timeout by pg-hang or pg-restart, unless its api was itself stopped", () => {
    const db = consistent()
    const seen = observed(db)
    const hung: Exchange = { ...exchange("k-a", null, null, "deliberate-retry"), sentAt: 2000, answeredAt: null, error: "TimeoutError: The operation was aborted due to timeout" }
    const hang = { kind: "pg-hang", role: null, from: 1000, to: 9000 }
    const restart = { kind: "pg-restart", role: null, from: 11_000, to: 13_000 }
    const withHang = (exchanges: ReadonlyArray<Exchange>, faultWindows: Observed["faultWindows"]) =>
      failing(db, { ...seen, exchanges: [...seen.exchanges, ...exchanges], faultWindows })
    assert.deepStrictEqual(withHang([hung], [hang]), [HTTP])
    // the request's time is [sent, sent + client timeout]: it met a restart that began 9 s after it was sent
    assert.deepStrictEqual(withHang([hung], [restart]), [HTTP])
    // the same timeout while its api was paused, or without a PostgreSQL fault, or a refused connection, is not the database's
    assert.deepStrictEqual(withHang([hung], [hang, { kind: "pause", role: "api1", from: 1500, to: 4000 }]), [])
    assert.deepStrictEqual(withHang([{ ...hung, sentAt: 20_000 }], [hang, restart]), [])
    assert.deepStrictEqual(withHang([{ ...hung, error: "Error: connect ECONNREFUSED 127.0.0.1:23001" }], [hang]), [])
    // an honest 503 during the faults passes, and is counted per fault
    const honest = { ...exchange("k-a", 503, { _tag: "ServiceUnavailable", message: "the database is not reachable" }), sentAt: 12_000, answeredAt: 12_050, retryAfter: "1" }
    const result = runChecks(db, { ...seen, exchanges: [...seen.exchanges, honest], faultWindows: [hang, restart] }).find((c) => c.name === HTTP)!
    assert.isTrue(result.ok)
    assert.strictEqual(result.counts["during pg-restart"], 1)
    // the margin is reported: the slowest answer through a fault against the client's timeout
    assert.strictEqual(result.counts.slowestInPgFaultMs, 50)
    assert.include(result.summary, "slowest answer through them 0.1 s of the client's")
  })

  it("a 409 on the retry after a 5xx is right while another request of the key is in progress", () => {
    const db = consistent()
    const seen = observed(db)
    const unavailable = { ...exchange("k-a", 503, { _tag: "ServiceUnavailable", message: "the database is not reachable" }), sentAt: 100, answeredAt: 200, retryAfter: "1" }
    const retry = { ...exchange("k-a", 201, { orderId: A }, "retry-after-5xx"), sentAt: 300, answeredAt: 900 }
    const conflict = { ...exchange("k-a", 409, { _tag: "IdempotencyKeyInUse", message: "in progress" }, "retry-after-5xx"), sentAt: 400, answeredAt: 500 }
    assert.deepStrictEqual(failing(db, { ...seen, exchanges: [...seen.exchanges, unavailable, retry, conflict] }), [])
    // with nothing else of the key outstanding, the same 409 is a claim the failed request left behind
    assert.deepStrictEqual(failing(db, { ...seen, exchanges: [...seen.exchanges, unavailable, { ...retry, sentAt: 600 }, conflict] }), [IDEMPOTENCY])
  })

  it("a 409 on the retry after a 503 is right while a pg-hang holds the first request's claim, not after it", () => {
    const db = consistent()
    const seen = observed(db)
    const unavailable = { ...exchange("k-a", 503, { _tag: "ServiceUnavailable", message: "the database did not answer" }), sentAt: 100, answeredAt: 200, retryAfter: "1" }
    const conflict = { ...exchange("k-a", 409, { _tag: "IdempotencyKeyInUse", message: "in progress" }, "retry-after-5xx"), sentAt: 300, answeredAt: 400 }
    const hang = { kind: "pg-hang", role: null, from: 50, to: 1_000 }
    assert.deepStrictEqual(failing(db, { ...seen, exchanges: [...seen.exchanges, unavailable, conflict], faultWindows: [hang] }), [])
    // the retry sent just after the hang, behind its backlog: still allowed; once the claim's lease (10 s here)
    // could have run out from the failed request's sending, a stuck claim
    assert.deepStrictEqual(failing(db, { ...seen, exchanges: [...seen.exchanges, unavailable, conflict], faultWindows: [{ ...hang, to: 250 }] }), [])
    const late = { ...conflict, sentAt: 10_100, answeredAt: 10_200 }
    assert.deepStrictEqual(failing(db, { ...seen, exchanges: [...seen.exchanges, unavailable, late], faultWindows: [{ ...hang, to: 250 }] }), [IDEMPOTENCY])
    // seed 5008 (times from the hang's start): a 6.9 s hang; the request sent 5.9 s into it, answered 503 at its
    // deadline 5.8 s later; the retry sent at once, 5.05 s after the hang ended, answered 409 — the claim's
    // background release waited behind the hang's backlog until 10.4 s after it ended (then the key succeeded)
    const held = { ...unavailable, sentAt: 5_915, answeredAt: 11_752 }
    const atOnce = { ...conflict, sentAt: 11_950, answeredAt: 14_018 }
    assert.deepStrictEqual(failing(db, { ...seen, exchanges: [...seen.exchanges, held, atOnce], faultWindows: [{ ...hang, from: 0, to: 6_901 }] }), [])
    // a restart is no excuse: the database answers again, the release goes through
    assert.deepStrictEqual(failing(db, { ...seen, exchanges: [...seen.exchanges, unavailable, conflict], faultWindows: [{ ...hang, kind: "pg-restart" }] }), [IDEMPOTENCY])
  })

  it("sees a key refused 503 (or not answered) that never succeeds when sent again", () => {
    const db = consistent()
    const seen = observed(db)
    const unavailable = (key: string, purpose: Exchange["purpose"]) =>
      ({ ...exchange(key, 503, { _tag: "ServiceUnavailable", message: "the database is not reachable" }, purpose), retryAfter: "1" })
    assert.deepStrictEqual(failing(db, { ...seen, exchanges: [...seen.exchanges, unavailable("k-c", "first"), exchange("k-c", null, null, "retry-unanswered")] }), [IDEMPOTENCY])
    assert.deepStrictEqual(failing(db, { ...seen, exchanges: [...seen.exchanges, unavailable("k-c", "first"), unavailable("k-c", "retry-unanswered")] }), [IDEMPOTENCY])
    // a key that succeeded after its 503 passes; so does one whose last answer is a 409 inside the lease
    assert.deepStrictEqual(failing(db, { ...seen, exchanges: [unavailable("k-a", "first"), ...seen.exchanges] }), [])
    assert.deepStrictEqual(failing(db, { ...seen, exchanges: [...seen.exchanges, unavailable("k-c", "first"), exchange("k-c", 409, { _tag: "IdempotencyKeyInUse" }, "retry-unanswered")] }), [])
  })

  it("sees a key left in flight and an order without a key", () => {
    const db = consistent()
    db.keys[1] = { ...db.keys[1]!, status: "in_flight", response_body: null }
    const names = failing(db)
    assert.include(names, IDEMPOTENCY)
    assert.include(names, "no unacknowledged orders")
  })

  it("sees a hostile message not parked, or parked with other bytes", () => {
    const db = consistent()
    const seen = observed(db)
    assert.deepStrictEqual(failing(db, { ...seen, hostile: [...seen.hostile, { variant: "nul", key: "n", bytes: Buffer.from([0x7b, 0, 0x7d]), partition: 3, offset: "1" }] }), [
      "hostile messages parked with their bytes"
    ])
    db.deadLetters[0] = { ...db.deadLetters[0]!, value_bytes: Buffer.from("{\"a\"\uFFFD") }
    assert.deepStrictEqual(failing(db), ["hostile messages parked with their bytes"])
  })

  it("sees a dead letter only in the table, and a SIGTERM past its deadline", () => {
    const db = consistent()
    const seen = observed(db)
    assert.deepStrictEqual(failing(db, { ...seen, dlqTopic: [], termResults: [{ role: "worker2", exitedInMs: null }] }), [
      "no dead letter lost (table ⇔ topic)",
      "SIGTERM: every role exits within the deadline"
    ])
  })

  it("sees verify differences", () => {
    const db = consistent()
    assert.deepStrictEqual(failing(db, { ...observed(db), verify: { code: 1, differences: 3, output: "3 differences" } }), ["projections verify clean"])
  })

  it("names the fields a verify difference is in", () => {
    const output = JSON.stringify({
      differences: 2,
      orders: [
        { orderId: "a", live: { version: 4, status: "PAID", reason: null }, folded: { version: 5, status: "PAID", reason: "x" } },
        { orderId: "b", folded: { version: 1 } }
      ]
    })
    assert.deepStrictEqual(verifyDifferences(`noise ${output}`), [
      "order a (live version 4): version: live 4 folded 5; reason: live null folded \"x\"",
      "order b: no live row"
    ])
    assert.deepStrictEqual(verifyDifferences("not json"), ["not json"])
  })

  describe("refunds", () => {
    const REFUNDS = "refunds: never above the charge, one provider refund per refund id, the log agrees with the provider"
    const R = "44444444-4444-4444-8444-444444444441"
    /** order A refunded in part (300 of 1000) by refund R, at the provider and in the log */
    const refunded = (): DatabaseSnapshot => {
      const db = consistent()
      db.events.splice(3, 0,
        event(6, A, 4, "RefundRequested", { refundId: R, amount: { minor: "300", currency: "EUR" } }),
        event(7, A, 5, "RefundSucceeded", { refundId: R, amount: { minor: "300", currency: "EUR" } }))
      db.orders[0] = { ...db.orders[0]!, status: "PARTIALLY_REFUNDED", version: 5, refunded_minor: "300" }
      db.refunds = [{ idempotency_key: R, order_id: A, amount_minor: "300", currency: "EUR", outcome: "succeeded" }]
      db.statsByState[0] = { status: "PARTIALLY_REFUNDED", orders: "1" }
      db.statsRevenue[0] = { ...db.statsRevenue[0]!, refunds: "1", refunded_minor: "300" }
      return { ...db, ...withWebhooks(db.events) }
    }
    const seenWith = (db: DatabaseSnapshot): Observed => {
      const seen = observed(db)
      return { ...seen, topic: db.events.map((e, i) => message(e.stream_id === A ? 1 : 2, i, e)), reconcile: { code: 0, differences: 0, output: "" } }
    }

    it("passes a partial refund the provider and the log agree on", () => {
      const db = refunded()
      assert.deepStrictEqual(failing(db, seenWith(db)), [])
    })

    it("sees a provider refund under a key that is no refund of ours, and a total the order does not show", () => {
      const db = refunded()
      db.refunds.push({ idempotency_key: "by-hand", order_id: A, amount_minor: "100", currency: "EUR", outcome: "succeeded" })
      assert.deepStrictEqual(failing(db, seenWith(db)), [REFUNDS])
    })

    it("sees refunds above the charge in the log (an illegal RefundRequested) and a reconcile that differs", () => {
      const db = refunded()
      db.events.splice(5, 0, event(8, A, 6, "RefundRequested", { refundId: "r-2", amount: { minor: "800", currency: "EUR" } }))
      const names = failing(db, { ...seenWith(db), reconcile: { code: 1, differences: 1, output: "missing_on_our_side" } })
      assert.include(names, "every transition legal")
      assert.include(names, REFUNDS)
    })

    it("sees a refund left pending at quiescence", () => {
      const db = refunded()
      db.events.splice(5, 0, event(8, A, 6, "RefundRequested", { refundId: "r-2", amount: { minor: "100", currency: "EUR" } }))
      assert.include(failing(db, seenWith(db)), "liveness: every order PAID, FAILED or CANCELLED")
    })
  })
  describe("webhooks", () => {
    const WEBHOOKS = "webhooks: every subscribed event delivered (verified) or given up, in version order per endpoint and order"
    const result = (db: DatabaseSnapshot, seen: Observed = observed(db)) => runChecks(db, seen).find((c) => c.name === WEBHOOKS)!
    const deliveryOf = (db: DatabaseSnapshot, endpoint: string, order: string, version: number) =>
      db.webhookDeliveries.find((d) => d.endpoint_id === endpoint && d.order_id === order && d.version === version)!
    const receiptOf = (db: DatabaseSnapshot, delivery: { id: string }) => db.webhookReceipts.find((r) => r.webhook_id === delivery.id)!

    it("passes every event delivered once, verified, in order, and counts a duplicate receipt", () => {
      const db = consistent()
      assert.deepStrictEqual(result(db).counts, {
        endpoints: 2, subscribedEvents: 6, deliveries: 6, delivered: 6, failed: 0, failedGone: 0, pending: 0, receipts: 6,
        duplicates: 0, whileDisabled: 0, whileDisabledUntimed: 0, missing: 0, outOfOrder: 0, invalid: 0, strangers: 0
      })
      db.webhookReceipts.push({ ...db.webhookReceipts[0]!, id: "99", received_at: new Date(Date.parse(at) + 60_000) })
      assert.isTrue(result(db).ok)
      assert.strictEqual(result(db).counts.duplicates, 1)
    })

    it("sees an event with no delivery, unless the notifier consumed it while the endpoint was disabled (a gone fault)", () => {
      const db = consistent()
      const gone = deliveryOf(db, ALL, A, 2)
      db.webhookDeliveries = db.webhookDeliveries.filter((d) => d !== gone)
      db.webhookReceipts = db.webhookReceipts.filter((r) => r.webhook_id !== gone.id)
      assert.deepStrictEqual(failing(db), [WEBHOOKS])
      const window = { kind: "webhook-gone", role: "all", from: Date.parse(at) - 1000, to: Date.parse(at) + 1000 }
      assert.deepStrictEqual(failing(db, { ...observed(db), faultWindows: [window] }), [])
      // a window of the other endpoint, or one over before the event was consumed, excuses nothing
      assert.deepStrictEqual(failing(db, { ...observed(db), faultWindows: [{ ...window, role: "paid" }] }), [WEBHOOKS])
      assert.deepStrictEqual(failing(db, { ...observed(db), faultWindows: [{ ...window, from: Date.parse(at) + 500 }] }), [WEBHOOKS])
      // nobody else wanted the event: no inbox row, no time of the notifier's decision — a window still open after
      // the event's record excuses it, one over before it does not
      db.notifierInbox = db.notifierInbox.filter((i) => i.message_id !== gone.event_id)
      assert.deepStrictEqual(failing(db), [WEBHOOKS])
      assert.deepStrictEqual(failing(db, { ...observed(db), faultWindows: [{ ...window, from: Date.parse(at) + 500, to: Date.parse(at) + 9000 }] }), [])
      assert.strictEqual(result(db, { ...observed(db), faultWindows: [window] }).counts.whileDisabledUntimed, 1)
      assert.deepStrictEqual(failing(db, { ...observed(db), faultWindows: [{ ...window, from: Date.parse(at) - 9000, to: Date.parse(at) - 500 }] }), [WEBHOOKS])
    })

    it("sees a delivery marked delivered the receiver holds no verified receipt of, or a receipt of another event", () => {
      const unsigned = consistent()
      receiptOf(unsigned, deliveryOf(unsigned, ALL, B, 1)).valid = false
      assert.deepStrictEqual(failing(unsigned), [WEBHOOKS])
      const unreceived = consistent()
      const d = deliveryOf(unreceived, PAID_ONLY, A, 3)
      unreceived.webhookReceipts = unreceived.webhookReceipts.filter((r) => r.webhook_id !== d.id)
      assert.deepStrictEqual(failing(unreceived), [WEBHOOKS])
      const mislabelled = consistent()
      receiptOf(mislabelled, deliveryOf(mislabelled, ALL, A, 1)).order_id = null
      assert.deepStrictEqual(failing(mislabelled), [WEBHOOKS])
    })

    it("sees a delivery left pending, one given up early, and passes one given up by a 410 or after the schedule", () => {
      const db = consistent()
      deliveryOf(db, ALL, B, 2).status = "pending"
      assert.strictEqual(result(db).counts.pending, 1)
      assert.deepStrictEqual(failing(db), [WEBHOOKS])
      const given = (attempts: number, lastStatus: number) => {
        const db = consistent()
        Object.assign(deliveryOf(db, ALL, B, 2), { status: "failed", attempts, last_status: lastStatus })
        return failing(db, { ...observed(db), webhookAttempts: 10 })
      }
      assert.deepStrictEqual(given(3, 500), [WEBHOOKS])
      assert.deepStrictEqual(given(10, 500), [])
      assert.deepStrictEqual(given(1, 410), [])
      assert.deepStrictEqual(given(0, 410), [WEBHOOKS])
    })

    it("sees a version first received before a lower one, unless the lower one failed", () => {
      const db = consistent()
      const [v1, v2] = [receiptOf(db, deliveryOf(db, ALL, A, 1)), receiptOf(db, deliveryOf(db, ALL, A, 2))]
      ;[v1.received_at, v2.received_at] = [v2.received_at, v1.received_at]
      assert.strictEqual(result(db).counts.outOfOrder, 1)
      assert.deepStrictEqual(failing(db), [WEBHOOKS])
      Object.assign(deliveryOf(db, ALL, A, 1), { status: "failed", attempts: 1, last_status: 410 })
      assert.deepStrictEqual(failing(db), [])
      // a later duplicate of a lower version is no disorder: only first receipts count
      const dup = consistent()
      dup.webhookReceipts.push({ ...receiptOf(dup, deliveryOf(dup, ALL, A, 1)), id: "99", received_at: new Date(Date.parse(at) + 60_000) })
      assert.deepStrictEqual(failing(dup), [])
    })

    it("sees a delivery of a type the endpoint did not subscribe to, a body of another state, and an endpoint left disabled", () => {
      const foreign = consistent()
      foreign.webhookDeliveries.push({ ...deliveryOf(foreign, ALL, B, 1), id: "x-1", endpoint_id: PAID_ONLY, status: "failed", attempts: 10 })
      assert.deepStrictEqual(failing(foreign, { ...observed(foreign), webhookAttempts: 10 }), [WEBHOOKS])
      const stale = consistent()
      deliveryOf(stale, ALL, A, 3).body_state = "PAYMENT_PENDING"
      assert.deepStrictEqual(failing(stale), [WEBHOOKS])
      const disabled = consistent()
      disabled.webhookEndpoints[1] = { ...disabled.webhookEndpoints[1]!, status: "disabled", disabled_reason: "the endpoint answered 410 Gone" }
      assert.deepStrictEqual(failing(disabled), [WEBHOOKS])
    })
  })
})

describe("chaos quiescence: the notifiers' group lag", () => {
  const ends = [0, 1, 2].map((partition) => ({ partition, low: "0", high: "200" }))
  it("counts what the group has not committed, a partition it never committed whole", () => {
    assert.strictEqual(lagOf(ends, [{ partition: 0, offset: "200" }, { partition: 1, offset: "150" }], 3), 250)
    assert.strictEqual(lagOf(ends, ends.map((e) => ({ partition: e.partition, offset: e.high })), 3), 0)
  })
  it("is unknown, not 0, when the end offsets do not cover every partition (a broker still loading after a restart)", () => {
    assert.strictEqual(lagOf([], [], 3), undefined)
    assert.strictEqual(lagOf(ends.slice(0, 2), ends.map((e) => ({ partition: e.partition, offset: e.high })), 3), undefined)
  })
})
