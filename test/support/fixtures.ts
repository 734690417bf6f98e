/** Fixed ids and builders for commands and events in tests. */
import { Either } from "effect"
import { parseMoney } from "../../src/domain/Money.js"
import {
  CancelOrder,
  type EventId,
  OrderCancelled,
  OrderFailed,
  type OrderId,
  OrderPaid,
  OrderPlaced,
  PaymentRequested,
  type PaymentId,
  PlaceOrder,
  RecordPaymentFailed,
  RecordPaymentSucceeded,
  StartPayment,
  type UserId
} from "../../src/domain/Order.js"
import { uuidv4, uuidv7 } from "../../src/Ids.js"

export const newId = <A extends string>() => uuidv4() as A
export const newOrderId = () => uuidv7() as OrderId
export const at = new Date("2026-01-02T03:04:05.000Z")
export const eur = (amount: string) => Either.getOrThrow(parseMoney(amount, "EUR"))

export const orderId = "01900000-0000-7000-8000-000000000001" as OrderId
export const userId = "11111111-1111-4111-8111-111111111111" as UserId
export const p1 = "22222222-2222-4222-8222-222222222221" as PaymentId
export const p2 = "22222222-2222-4222-8222-222222222222" as PaymentId
const eid = (n: number) => `33333333-3333-4333-8333-${String(n).padStart(12, "0")}` as EventId

export const cmd = {
  place: (o = orderId, amount = eur("299.99"), u = userId) =>
    new PlaceOrder({ commandId: newId(), orderId: o, userId: u, amount, at }),
  start: (p = p1, o = orderId) => new StartPayment({ commandId: newId(), orderId: o, paymentId: p, at }),
  succeed: (p = p1, o = orderId) => new RecordPaymentSucceeded({ commandId: newId(), orderId: o, paymentId: p, at }),
  fail: (p = p1, o = orderId) =>
    new RecordPaymentFailed({ commandId: newId(), orderId: o, paymentId: p, reason: "declined", at }),
  cancel: (o = orderId) => new CancelOrder({ commandId: newId(), orderId: o, reason: "changed my mind", at })
}

export const ev = {
  placed: (o = orderId) => new OrderPlaced({ eventId: eid(1), orderId: o, userId, amount: eur("299.99"), occurredAt: at }),
  requested: (p = p1, o = orderId) => new PaymentRequested({ eventId: eid(2), orderId: o, paymentId: p, occurredAt: at }),
  paid: (p = p1, o = orderId) => new OrderPaid({ eventId: eid(3), orderId: o, paymentId: p, occurredAt: at }),
  failed: (p = p1, o = orderId) =>
    new OrderFailed({ eventId: eid(4), orderId: o, paymentId: p, reason: "declined", occurredAt: at }),
  cancelled: (o = orderId) =>
    new OrderCancelled({ eventId: eid(5), orderId: o, reason: "changed my mind", occurredAt: at })
}
