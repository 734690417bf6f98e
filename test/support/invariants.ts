/**
 * Checks of docs/ARCHITECTURE.md "Invariants" on a stored stream, shared by tests and property tests:
 * versions 1..n without gap (2), every event a legal successor of the state before it (3),
 * and the projection row equal to the fold of the log (7).
 */
import { Effect, Option } from "effect"
import type { OrderEvent, OrderState } from "../../src/domain/Order.js"
import { evolve, fold } from "../../src/domain/OrderDecider.js"
import { EventStore } from "../../src/eventstore/EventStore.js"
import { OrdersReadModel } from "../../src/projection/OrdersReadModel.js"

/** Why `event` cannot follow `state` in a legal history, or undefined when it can. */
export const illegalSuccessor = (state: OrderState, event: OrderEvent): string | undefined => {
  const at = `${event._tag} on ${state?.status ?? "no order"}`
  if (state === undefined) return event._tag === "OrderPlaced" ? undefined : at
  switch (event._tag) {
    case "OrderPlaced":
      return at
    case "PaymentRequested":
    case "OrderCancelled":
      return state.status === "CREATED" ? undefined : at
    case "PaymentRetryScheduled":
    case "OrderPaid":
    case "OrderFailed":
      return state.status === "PAYMENT_PENDING" && state.paymentId === event.paymentId ? undefined : at
    case "RefundRequested": {
      // a new refund of a paid order, in its currency, above zero, within what neither succeeded nor pending refunds took
      const taken = state.refunds.reduce((sum, r) => r.status === "failed" ? sum : sum + r.amount.minor, 0n)
      const legal = (state.status === "PAID" || state.status === "PARTIALLY_REFUNDED") &&
        !state.refunds.some((r) => r.refundId === event.refundId) && event.amount.currency === state.amount.currency &&
        event.amount.minor > 0n && taken + event.amount.minor <= state.amount.minor
      return legal ? undefined : `${at}: ${event.amount.minor} with ${taken} of ${state.amount.minor} taken`
    }
    case "RefundRetryScheduled":
    case "RefundFailed":
      return state.refunds.some((r) => r.refundId === event.refundId && r.status === "pending") ? undefined : at
    case "RefundSucceeded":
      return state.refunds.some((r) => r.refundId === event.refundId && r.status === "pending" && r.amount.minor === event.amount.minor)
        ? undefined
        : at
  }
}

export const historyViolations = (events: ReadonlyArray<OrderEvent>): Array<string> => {
  const violations: Array<string> = []
  let state: OrderState = undefined
  for (const event of events) {
    const why = illegalSuccessor(state, event)
    if (why) violations.push(why)
    state = evolve(state, event)
  }
  return violations
}

/** Every invariant of one stored order; returns the violations found (empty when all hold). */
export const checkStoredOrder = (orderId: string) =>
  Effect.gen(function*() {
    const recorded = yield* (yield* EventStore).readStream(orderId as never)
    const violations: Array<string> = []
    recorded.forEach((r, i) => {
      if (r.version !== i + 1) violations.push(`version ${r.version} at index ${i}`)
    })
    const events = recorded.map((r) => r.event)
    if (new Set(events.map((e) => e.eventId)).size !== events.length) violations.push("duplicate event id")
    violations.push(...historyViolations(events))
    const row = yield* (yield* OrdersReadModel).get(orderId as never)
    const folded = fold(events)
    if (JSON.stringify(Option.getOrUndefined(row), replacer) !== JSON.stringify(folded, replacer)) {
      violations.push(`projection ${JSON.stringify(Option.getOrUndefined(row), replacer)} ≠ fold ${JSON.stringify(folded, replacer)}`)
    }
    return { violations, state: folded, events }
  })

const replacer = (_: string, v: unknown) => (typeof v === "bigint" ? v.toString() : v)
