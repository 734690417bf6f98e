/**
 * The webhooks check (issue 20): what the notifier promised the endpoints, read from its deliveries
 * (webhook_deliveries), its inbox rows (when it consumed each event) and the receiver simulator's own record of
 * every request it got (webhook_receipts). At quiescence, for every event of the log of a type an endpoint
 * subscribed to (recorded after the endpoint was registered) there is one delivery, and it is either delivered —
 * the receiver holds a receipt of it (webhook-id = the delivery's id) whose signature verified and whose body
 * names the same event — or failed after its attempts (the retry schedule spent, or a 410); none pending. Per
 * (endpoint, order) the first verified receipts come in version order, unless the lower delivery was failed.
 * An event the notifier consumed while the endpoint was disabled (a 410 of the receiver family disables it until
 * the nemesis enables it again) has no delivery, by design: the fault windows say when that was.
 */
import { check, type CheckInput, type CheckResult, walk } from "./common.js"

/** The webhook type of each order event (null: no webhook) — the checker's own statement of docs/HTTP.md's list. */
export const WEBHOOK_TYPE_OF: Readonly<Record<string, string | null>> = {
  OrderPlaced: "order.placed",
  PaymentRequested: "order.payment_pending",
  PaymentRetryScheduled: null,
  OrderPaid: "order.paid",
  OrderFailed: "order.failed",
  OrderCancelled: "order.cancelled",
  RefundRequested: "order.refund_requested",
  RefundRetryScheduled: null,
  RefundSucceeded: "order.refund_succeeded",
  RefundFailed: "order.refund_failed"
}
export const WEBHOOK_EVENT_TYPES = Object.keys(WEBHOOK_TYPE_OF).filter((t) => WEBHOOK_TYPE_OF[t] !== null)

/** The fault window kind during which an endpoint (the window's role: its name at the receiver) may be disabled. */
export const ENDPOINT_DISABLED_WINDOW = "webhook-gone"

/** The receiver's name of an endpoint: the last segment of `…/hooks/<name>`. */
const receiverName = (url: string) => /\/hooks\/([^/?#]+)/.exec(url)?.[1] ?? url

const time = (d: Date | string | null | undefined) => d === null || d === undefined ? NaN : new Date(d).getTime()

export const webhooks = ({ db, seen, streams }: CheckInput): CheckResult => {
  const failures: Array<string> = []
  const samples: Array<string> = []
  const fail = (sample: string, why: string) => {
    failures.push(why)
    samples.push(sample)
  }
  const endpoints = db.webhookEndpoints
  const nameOf = new Map(endpoints.map((e) => [e.id, receiverName(e.url)]))
  const deliveries = new Map<string, (typeof db.webhookDeliveries)[number]>()
  for (const d of db.webhookDeliveries) deliveries.set(`${d.endpoint_id}/${d.event_id}`, d)
  const receiptsOf = new Map<string, Array<(typeof db.webhookReceipts)[number]>>()
  for (const r of db.webhookReceipts) {
    const l = receiptsOf.get(r.webhook_id ?? "") ?? []
    l.push(r)
    receiptsOf.set(r.webhook_id ?? "", l)
  }
  const consumedAt = new Map(db.notifierInbox.map((i) => [i.message_id, time(i.processed_at)]))
  const disabledWindows = seen.faultWindows.filter((w) => w.kind === ENDPOINT_DISABLED_WINDOW)
  const events = new Map(db.events.map((e) => [e.event_id, e]))
  const subscribed = (endpoint: (typeof endpoints)[number], type: string) => endpoint.event_types === null || endpoint.event_types.includes(type)

  // every subscribed event has its delivery, unless the notifier consumed it while the endpoint was disabled: it
  // decided between the event's record and its inbox row, so a window overlapping that span excuses it. An event
  // no enabled endpoint wanted leaves no inbox row (src/webhooks/Notifier.ts), and no time of its decision: then
  // any window still open after the event's record excuses it (sound, and weaker: counted apart)
  let expected = 0
  let whileDisabled = 0
  let whileDisabledUntimed = 0
  let missing = 0
  for (const events of streams.values()) {
    for (const e of events) {
      const type = WEBHOOK_TYPE_OF[e.type]
      if (!type) continue
      for (const endpoint of endpoints) {
        if (!subscribed(endpoint, type) || time(e.recorded_at) < time(endpoint.created_at)) continue
        expected++
        if (deliveries.has(`${endpoint.id}/${e.event_id}`)) continue
        const consumed = consumedAt.get(e.event_id)
        const name = nameOf.get(endpoint.id)
        const windows = disabledWindows.filter((w) => w.role === name && (w.to ?? Infinity) >= time(e.recorded_at))
        if (consumed !== undefined && windows.some((w) => w.from <= consumed)) {
          whileDisabled++
          continue
        }
        if (consumed === undefined && windows.length > 0) {
          whileDisabledUntimed++
          continue
        }
        missing++
        fail(e.stream_id, `${e.stream_id} v${e.version} ${type} (event ${e.event_id}): no delivery to endpoint ${name}` +
          (consumed === undefined ? " — and no inbox row of the notifier: it never wrote for the event" : ` — consumed ${new Date(consumed).toISOString()} while the endpoint was enabled`))
      }
    }
  }

  // each delivery: for an event of the log the endpoint subscribed to; settled; delivered ⇒ a verified receipt
  // of the same event; failed ⇒ attempted, and given up by the schedule or a 410
  let delivered = 0
  let failedSpent = 0
  let failedGone = 0
  let pending = 0
  let duplicates = 0
  const byEndpointOrder = new Map<string, Array<{ version: number; failed: boolean; first: { at: number; id: number } | null }>>()
  for (const d of db.webhookDeliveries) {
    const name = nameOf.get(d.endpoint_id) ?? d.endpoint_id
    const e = events.get(d.event_id)
    const endpoint = endpoints.find((x) => x.id === d.endpoint_id)
    if (!e || e.stream_id !== d.order_id || e.version !== d.version || WEBHOOK_TYPE_OF[e.type] !== d.event_type) {
      fail(d.order_id, `${d.order_id} v${d.version} ${d.event_type}: delivery ${d.id} to ${name} is for no such event of the log (${e ? `the log has v${e.version} ${e.type} of ${e.stream_id}` : `event ${d.event_id} not in the log`})`)
    } else if (endpoint && !subscribed(endpoint, d.event_type)) {
      fail(d.order_id, `${d.order_id} v${d.version} ${d.event_type}: delivered to ${name}, which did not subscribe to it`)
    }
    if (e && d.body_version !== null && (d.body_version !== d.version || d.body_event_id !== d.event_id || d.body_type !== d.event_type)) {
      fail(d.order_id, `${d.order_id} v${d.version}: delivery ${d.id}'s body says ${d.body_type} v${d.body_version} event ${d.body_event_id}`)
    }
    if (e && d.body_state !== null) {
      const state = walk((streams.get(e.stream_id) ?? []).filter((x) => x.version <= e.version)).state.status
      if (state !== d.body_state) fail(d.order_id, `${d.order_id} v${d.version} ${d.event_type}: the body's order is ${d.body_state}, the log makes it ${state} at that version`)
    }
    const receipts = receiptsOf.get(d.id) ?? []
    duplicates += Math.max(0, receipts.length - 1)
    const valid = receipts.filter((r) => r.valid === true)
    for (const r of receipts) {
      if (r.name !== name) fail(d.order_id, `${d.order_id} v${d.version}: delivery ${d.id} for endpoint ${name} reached /hooks/${r.name}`)
      if (r.valid === true && (r.event_id !== d.event_id || r.version !== d.version || r.event_type !== d.event_type || r.order_id !== d.order_id)) {
        fail(d.order_id, `${d.order_id} v${d.version} ${d.event_type}: receipt ${r.id} of delivery ${d.id} names ${r.event_type} v${r.version} of order ${r.order_id} (event ${r.event_id})`)
      }
    }
    if (d.status === "pending") {
      pending++
      fail(d.order_id, `${d.order_id} v${d.version} ${d.event_type}: delivery ${d.id} to ${name} still pending after ${d.attempts} attempt(s) (last ${d.last_status ?? d.last_error ?? "none"})`)
    } else if (d.status === "delivered") {
      delivered++
      if (valid.length === 0) {
        fail(d.order_id, `${d.order_id} v${d.version} ${d.event_type}: delivery ${d.id} to ${name} is delivered, but the receiver holds no verified receipt of it (${receipts.length} receipt(s): ${receipts.map((r) => `valid ${r.valid} answered ${r.answered}`).join(", ") || "none"})`)
      }
    } else {
      const gone = d.last_status === 410
      if (gone) failedGone++
      else failedSpent++
      if (d.attempts < 1) fail(d.order_id, `${d.order_id} v${d.version} ${d.event_type}: delivery ${d.id} to ${name} failed without an attempt`)
      else if (!gone && seen.webhookAttempts !== undefined && d.attempts < seen.webhookAttempts) {
        fail(d.order_id, `${d.order_id} v${d.version} ${d.event_type}: delivery ${d.id} to ${name} failed after ${d.attempts} of ${seen.webhookAttempts} attempts (last ${d.last_status ?? d.last_error})`)
      }
    }
    const first = valid.map((r) => ({ at: time(r.received_at), id: Number(r.id) })).sort((a, b) => a.at - b.at || a.id - b.id)[0] ?? null
    const key = `${d.endpoint_id}/${d.order_id}`
    byEndpointOrder.set(key, [...(byEndpointOrder.get(key) ?? []), { version: d.version, failed: d.status === "failed", first }])
  }

  // per (endpoint, order): a version's first verified receipt never before a lower version's, unless that one failed
  let outOfOrder = 0
  for (const [key, ds] of byEndpointOrder) {
    ds.sort((a, b) => a.version - b.version)
    for (let i = 0; i < ds.length; i++) {
      const low = ds[i]!
      if (low.failed || low.first === null) continue
      const ahead = ds.slice(i + 1).find((high) => high.first !== null && (high.first.at < low.first!.at || (high.first.at === low.first!.at && high.first.id < low.first!.id)))
      if (ahead) {
        outOfOrder++
        const [endpointId, orderId] = key.split("/")
        fail(orderId!, `${orderId}: at ${nameOf.get(endpointId!)} v${ahead.version} was first received ${new Date(ahead.first!.at).toISOString()}, before v${low.version} (${new Date(low.first.at).toISOString()}), which was not failed`)
      }
    }
  }

  // every receipt is of a delivery of ours and verified; every endpoint enabled at the end
  let invalid = 0
  let strangers = 0
  const ids = new Set(db.webhookDeliveries.map((d) => d.id))
  for (const r of db.webhookReceipts) {
    if (r.valid !== true) {
      invalid++
      fail(r.order_id ?? r.webhook_id ?? String(r.id), `receipt ${r.id} at ${r.name} (webhook-id ${r.webhook_id}, ${r.event_type} v${r.version}): signature ${r.valid === false ? "invalid" : "not verified (the receiver knew no secret)"}`)
    }
    if (r.webhook_id === null || !ids.has(r.webhook_id)) {
      strangers++
      fail(r.order_id ?? String(r.id), `receipt ${r.id} at ${r.name}: webhook-id ${r.webhook_id} is no delivery of ours`)
    }
  }
  for (const e of endpoints) if (e.status !== "enabled") fail(e.id, `endpoint ${nameOf.get(e.id)} (${e.id}) is ${e.status} at quiescence: ${e.disabled_reason}`)

  return check("webhooks: every subscribed event delivered (verified) or given up, in version order per endpoint and order", failures,
    `${endpoints.length} endpoints; ${expected} subscribed events, ${db.webhookDeliveries.length} deliveries: ${delivered} delivered, ${failedSpent + failedGone} failed (${failedGone} by a 410), ${pending} pending; ` +
      `${db.webhookReceipts.length} receipts, ${duplicates} duplicates; ${whileDisabled + whileDisabledUntimed} consumed while the endpoint was disabled` +
      ` (${whileDisabledUntimed} of them without an inbox row, excused by a window after their record); missing ${missing}, out of order ${outOfOrder}`,
    { endpoints: endpoints.length, subscribedEvents: expected, deliveries: db.webhookDeliveries.length, delivered, failed: failedSpent + failedGone, failedGone, pending,
      receipts: db.webhookReceipts.length, duplicates, whileDisabled, whileDisabledUntimed, missing, outOfOrder, invalid, strangers },
    samples)
}
