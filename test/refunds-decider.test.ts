/**
 * Refunds in the decider (issue 21), state by state: every state × every refund command has exactly one
 * outcome — its event, nothing (satisfied already) or a typed rejection — and the fold keeps the refunded total,
 * the pending amount and the order's state.
 */
import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import { Money } from "../src/domain/Money.js"
import {
  type EventId,
  type OrderCommand,
  type OrderEvent,
  RecordRefundFailed,
  RecordRefundSucceeded,
  refundable,
  RefundFailed,
  type RefundId,
  RefundRequested,
  RefundRetryScheduled,
  RefundSucceeded,
  refundsPending,
  RequestRefund,
  ScheduleRefundRetry
} from "../src/domain/Order.js"
import { decide, fold } from "../src/domain/OrderDecider.js"
import { decodeEvent, encodeEvent } from "../src/eventstore/EventCodec.js"
import { at, cmd, ev, eur, newId, orderId, p1 } from "./support/fixtures.js"

const r1 = "44444444-4444-4444-8444-444444444441" as RefundId
const r2 = "44444444-4444-4444-8444-444444444442" as RefundId
const rx = "44444444-4444-4444-8444-44444444444f" as RefundId
const eid = (n: number) => `55555555-5555-4555-8555-${String(n).padStart(12, "0")}` as EventId

const requested = (refundId: RefundId, amount: Money, n: number) =>
  new RefundRequested({ eventId: eid(n), orderId, refundId, amount, reason: null, occurredAt: at })
const succeeded = (refundId: RefundId, amount: Money, n: number) =>
  new RefundSucceeded({ eventId: eid(n), orderId, refundId, amount, occurredAt: at })
const refused = (refundId: RefundId, n: number) =>
  new RefundFailed({ eventId: eid(n), orderId, refundId, reason: "refused", occurredAt: at })

const paid = [ev.placed(), ev.requested(), ev.paid()]
const histories: Record<string, ReadonlyArray<OrderEvent>> = {
  none: [],
  CREATED: [ev.placed()],
  PAYMENT_PENDING: [ev.placed(), ev.requested()],
  PAID: paid,
  FAILED: [ev.placed(), ev.requested(), ev.failed()],
  CANCELLED: [ev.placed(), ev.cancelled()],
  "PAID, r1 (100.00) pending": [...paid, requested(r1, eur("100.00"), 1)],
  "PARTIALLY_REFUNDED (r1 100.00 succeeded)": [...paid, requested(r1, eur("100.00"), 1), succeeded(r1, eur("100.00"), 2)],
  "PAID, r1 failed": [...paid, requested(r1, eur("100.00"), 1), refused(r1, 2)],
  "REFUNDED (r1 299.99 succeeded)": [...paid, requested(r1, eur("299.99"), 1), succeeded(r1, eur("299.99"), 2)]
}

const base = { orderId, at }
const commands: Record<string, () => OrderCommand> = {
  "refund r2 50.00": () => new RequestRefund({ ...base, commandId: newId(), refundId: r2, amount: eur("50.00"), reason: null }),
  "refund r2 199.99 (all that is left after r1)": () =>
    new RequestRefund({ ...base, commandId: newId(), refundId: r2, amount: eur("199.99"), reason: null }),
  "refund r2 200.00 (above what r1 leaves)": () =>
    new RequestRefund({ ...base, commandId: newId(), refundId: r2, amount: eur("200.00"), reason: null }),
  "refund r2 300.00 (above the charge)": () =>
    new RequestRefund({ ...base, commandId: newId(), refundId: r2, amount: eur("300.00"), reason: null }),
  "refund r2 in USD": () =>
    new RequestRefund({ ...base, commandId: newId(), refundId: r2, amount: new Money({ minor: 100n, currency: "USD" as Money["currency"] }), reason: null }),
  "refund r1 100.00 again": () => new RequestRefund({ ...base, commandId: newId(), refundId: r1, amount: eur("100.00"), reason: null }),
  "refund r1 with 90.00": () => new RequestRefund({ ...base, commandId: newId(), refundId: r1, amount: eur("90.00"), reason: null }),
  "r1 succeeded": () => new RecordRefundSucceeded({ ...base, commandId: newId(), refundId: r1 }),
  "r1 failed": () => new RecordRefundFailed({ ...base, commandId: newId(), refundId: r1, reason: "refused" }),
  "r1 retry": () => new ScheduleRefundRetry({ ...base, commandId: newId(), refundId: r1, attempt: 1, dueAt: at, error: "503" }),
  "unknown refund succeeded": () => new RecordRefundSucceeded({ ...base, commandId: newId(), refundId: rx }),
  "unknown refund retry": () => new ScheduleRefundRetry({ ...base, commandId: newId(), refundId: rx, attempt: 1, dueAt: at, error: "503" })
}

type Outcome = string // an event's tag, "nothing", or a rejection's tag (RefundRefused with its code)
const N = "OrderNotFound"
const I = "IllegalTransition"
const expected: Record<string, Record<string, Outcome>> = {
  none: Object.fromEntries(Object.keys(commands).map((c) => [c, N])),
  ...Object.fromEntries(["CREATED", "PAYMENT_PENDING", "FAILED", "CANCELLED"].map((state) => [state, {
    "refund r2 50.00": I, "refund r2 199.99 (all that is left after r1)": I, "refund r2 200.00 (above what r1 leaves)": I,
    "refund r2 300.00 (above the charge)": I, "refund r2 in USD": I, "refund r1 100.00 again": I, "refund r1 with 90.00": I,
    "r1 succeeded": I, "r1 failed": I, "r1 retry": I, "unknown refund succeeded": I, "unknown refund retry": I
  }])),
  PAID: {
    "refund r2 50.00": "RefundRequested", "refund r2 199.99 (all that is left after r1)": "RefundRequested",
    "refund r2 200.00 (above what r1 leaves)": "RefundRequested", "refund r2 300.00 (above the charge)": "RefundRefused:amount",
    "refund r2 in USD": "RefundRefused:currency", "refund r1 100.00 again": "RefundRequested", "refund r1 with 90.00": "RefundRequested",
    "r1 succeeded": I, "r1 failed": I, "r1 retry": I, "unknown refund succeeded": I, "unknown refund retry": I
  },
  "PAID, r1 (100.00) pending": {
    "refund r2 50.00": "RefundRequested", "refund r2 199.99 (all that is left after r1)": "RefundRequested",
    "refund r2 200.00 (above what r1 leaves)": "RefundRefused:amount", "refund r2 300.00 (above the charge)": "RefundRefused:amount",
    "refund r2 in USD": "RefundRefused:currency", "refund r1 100.00 again": "nothing", "refund r1 with 90.00": "RefundRefused:refund_id",
    "r1 succeeded": "RefundSucceeded", "r1 failed": "RefundFailed", "r1 retry": "RefundRetryScheduled",
    "unknown refund succeeded": I, "unknown refund retry": I
  },
  "PARTIALLY_REFUNDED (r1 100.00 succeeded)": {
    "refund r2 50.00": "RefundRequested", "refund r2 199.99 (all that is left after r1)": "RefundRequested",
    "refund r2 200.00 (above what r1 leaves)": "RefundRefused:amount", "refund r2 300.00 (above the charge)": "RefundRefused:amount",
    "refund r2 in USD": "RefundRefused:currency", "refund r1 100.00 again": "nothing", "refund r1 with 90.00": "RefundRefused:refund_id",
    "r1 succeeded": "nothing", "r1 failed": I, "r1 retry": "nothing", "unknown refund succeeded": I, "unknown refund retry": I
  },
  "PAID, r1 failed": {
    // a failed refund's amount is refundable again
    "refund r2 50.00": "RefundRequested", "refund r2 199.99 (all that is left after r1)": "RefundRequested",
    "refund r2 200.00 (above what r1 leaves)": "RefundRequested", "refund r2 300.00 (above the charge)": "RefundRefused:amount",
    "refund r2 in USD": "RefundRefused:currency", "refund r1 100.00 again": "nothing", "refund r1 with 90.00": "RefundRefused:refund_id",
    "r1 succeeded": I, "r1 failed": "nothing", "r1 retry": "nothing", "unknown refund succeeded": I, "unknown refund retry": I
  },
  "REFUNDED (r1 299.99 succeeded)": {
    "refund r2 50.00": I, "refund r2 199.99 (all that is left after r1)": I, "refund r2 200.00 (above what r1 leaves)": I,
    "refund r2 300.00 (above the charge)": I, "refund r2 in USD": I,
    // the first request's key again: its first answer, even now that nothing is left
    "refund r1 100.00 again": "RefundRefused:refund_id", "refund r1 with 90.00": "RefundRefused:refund_id",
    "r1 succeeded": "nothing", "r1 failed": I, "r1 retry": "nothing", "unknown refund succeeded": I, "unknown refund retry": I
  }
}

const outcomeOf = (command: OrderCommand, history: ReadonlyArray<OrderEvent>): Outcome => {
  const decision = decide(command, fold(history))
  if (Either.isLeft(decision)) {
    const e = decision.left
    return e._tag === "RefundRefused" ? `RefundRefused:${e.code}` : e._tag
  }
  return decision.right.length === 0 ? "nothing" : decision.right.map((e) => e._tag).join(",")
}

describe("refunds: every state × every refund command", () => {
  for (const [state, history] of Object.entries(histories)) {
    for (const [name, make] of Object.entries(commands)) {
      it(`${state} + ${name} → ${expected[state]![name]}`, () => {
        assert.strictEqual(outcomeOf(make(), history), expected[state]![name])
      })
    }
  }
})

describe("refunds: the fold", () => {
  it("partial + partial = REFUNDED; the refunded total and the state follow the succeeded refunds", () => {
    const partial = fold([...paid, requested(r1, eur("100.00"), 1), succeeded(r1, eur("100.00"), 2)])!
    assert.strictEqual(partial.status, "PARTIALLY_REFUNDED")
    assert.strictEqual(partial.refunded, 10000n)
    const full = fold([...paid, requested(r1, eur("100.00"), 1), succeeded(r1, eur("100.00"), 2), requested(r2, eur("199.99"), 3), succeeded(r2, eur("199.99"), 4)])!
    assert.strictEqual(full.status, "REFUNDED")
    assert.strictEqual(full.refunded, 29999n)
    assert.strictEqual(refundable(full), 0n)
  })

  it("a pending refund counts against what is left; a failed one gives it back; retries are the refund's state", () => {
    const pending = fold([...paid, requested(r1, eur("100.00"), 1), new RefundRetryScheduled({ eventId: eid(2), orderId, refundId: r1, attempt: 2, dueAt: at, error: "503", occurredAt: at })])!
    assert.strictEqual(pending.status, "PAID")
    assert.strictEqual(refundsPending(pending), 10000n)
    assert.strictEqual(refundable(pending), 19999n)
    assert.deepInclude(pending.refunds[0], { attempt: 2, dueAt: at, parked: false, status: "pending" })
    const parked = fold([...paid, requested(r1, eur("100.00"), 1), new RefundRetryScheduled({ eventId: eid(2), orderId, refundId: r1, attempt: 8, dueAt: null, error: "503", occurredAt: at })])!
    assert.deepInclude(parked.refunds[0], { attempt: 8, dueAt: null, parked: true })
    const failed = fold([...paid, requested(r1, eur("100.00"), 1), refused(r1, 2)])!
    assert.strictEqual(refundable(failed), 29999n)
    assert.deepInclude(failed.refunds[0], { status: "failed", failure: "refused" })
  })

  it("a retry that knew fewer attempts than the refund has (an older state) changes nothing", () => {
    const history = [...paid, requested(r1, eur("100.00"), 1), new RefundRetryScheduled({ eventId: eid(2), orderId, refundId: r1, attempt: 3, dueAt: null, error: "503", occurredAt: at })]
    assert.strictEqual(outcomeOf(new ScheduleRefundRetry({ ...base, commandId: newId(), refundId: r1, attempt: 2, dueAt: at, error: "x" }), history), "nothing")
    assert.strictEqual(outcomeOf(new ScheduleRefundRetry({ ...base, commandId: newId(), refundId: r1, attempt: 4, dueAt: null, error: "x" }), history), "RefundRetryScheduled")
  })

  it("the payment's commands stay satisfied on a refunded order (a late duplicate result changes nothing)", () => {
    const history = [...paid, requested(r1, eur("299.99"), 1), succeeded(r1, eur("299.99"), 2)]
    for (const command of [cmd.succeed(p1), new ScheduleRefundRetry({ ...base, commandId: newId(), refundId: r1, attempt: 1, dueAt: at, error: "x" })]) {
      assert.strictEqual(outcomeOf(command, history), "nothing")
    }
    assert.strictEqual(outcomeOf(cmd.cancel(), history), I)
  })

  it("the refund events round-trip through the codec", () => {
    for (const event of [requested(r1, eur("1.00"), 1), succeeded(r1, eur("1.00"), 2), refused(r1, 3),
      new RefundRetryScheduled({ eventId: eid(4), orderId, refundId: r1, attempt: 1, dueAt: null, error: "x", occurredAt: at })]) {
      const encoded = encodeEvent(event)
      assert.deepStrictEqual(decodeEvent(encoded.type, encoded.schemaVersion, JSON.parse(JSON.stringify(encoded.data))), event)
    }
  })
})
