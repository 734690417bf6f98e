/**
 * The one fixture module of the tests and the property suite: fixed ids, builders of commands and events, and
 * the fast-check arbitraries of commands, amounts and ids. Whatever is drawn at random here is drawn by
 * fast-check from a seed (no Math.random): the same seed gives the same commands.
 */
import { Either } from "effect"
import fc from "fast-check"
import { currencyExponents, Money, parseMoney } from "../../src/domain/Money.js"
import {
  CancelOrder,
  type EventId,
  OrderCancelled,
  type OrderCommand,
  OrderFailed,
  type OrderId,
  OrderPaid,
  OrderPlaced,
  PaymentRequested,
  type PaymentId,
  PlaceOrder,
  RecordPaymentFailed,
  RecordPaymentSucceeded,
  RecordRefundFailed,
  RecordRefundSucceeded,
  type RefundId,
  RequestRefund,
  StartPayment,
  type UserId
} from "../../src/domain/Order.js"
import { uuidv4, uuidv7 } from "../../src/Ids.js"

// ---- fixed values and fresh ids ----

export const newId = <A extends string>() => uuidv4() as A
export const newOrderId = () => uuidv7() as OrderId
export const at = new Date("2026-01-02T03:04:05.000Z")
export const eur = (amount: string) => Either.getOrThrow(parseMoney(amount, "EUR"))

/** The n-th of a family of fixed order ids (a valid UUIDv7). */
export const fixedOrderId = (n: number) => `01900000-0000-7000-8000-${n.toString(16).padStart(12, "0")}` as OrderId
export const orderId = fixedOrderId(1)
export const userId = "11111111-1111-4111-8111-111111111111" as UserId
export const p1 = "22222222-2222-4222-8222-222222222221" as PaymentId
export const p2 = "22222222-2222-4222-8222-222222222222" as PaymentId
export const r1 = "44444444-4444-4444-8444-444444444441" as RefundId
const eid = (n: number) => `33333333-3333-4333-8333-${String(n).padStart(12, "0")}` as EventId

// ---- commands and events ----

export type CommandKind = "place" | "start" | "succeed" | "fail" | "cancel" | "refund" | "refundSucceed" | "refundFail"

export interface CommandFields {
  readonly commandId: string
  readonly orderId: OrderId
  readonly paymentId: PaymentId
  /** refunds: the refund's id (its `amount` is the refund's) */
  readonly refundId: RefundId
  readonly userId: UserId
  readonly amount: Money
  readonly at: Date
}

/** The command of a kind (fields a kind has no use for are ignored). */
export const makeCommand = (kind: CommandKind, f: CommandFields): OrderCommand => {
  const base = { commandId: f.commandId as PlaceOrder["commandId"], orderId: f.orderId, at: f.at }
  switch (kind) {
    case "place":
      return new PlaceOrder({ ...base, userId: f.userId, amount: f.amount })
    case "start":
      return new StartPayment({ ...base, paymentId: f.paymentId })
    case "succeed":
      return new RecordPaymentSucceeded({ ...base, paymentId: f.paymentId })
    case "fail":
      return new RecordPaymentFailed({ ...base, paymentId: f.paymentId, reason: "declined" })
    case "cancel":
      return new CancelOrder({ ...base, reason: "changed my mind" })
    case "refund":
      return new RequestRefund({ ...base, refundId: f.refundId, amount: f.amount, reason: null })
    case "refundSucceed":
      return new RecordRefundSucceeded({ ...base, refundId: f.refundId })
    case "refundFail":
      return new RecordRefundFailed({ ...base, refundId: f.refundId, reason: "refused" })
  }
}

const fixed = (o: OrderId, p: PaymentId = p1, amount = eur("299.99"), u = userId, r: RefundId = r1): CommandFields => ({
  commandId: newId(),
  orderId: o,
  paymentId: p,
  refundId: r,
  userId: u,
  amount,
  at
})

/** The command of a kind on order `o` with payment `p` (a refund: `refund` of `amount`), a fresh command id and
 * the fixed time `at`. */
export const commandOf = (kind: CommandKind, o = orderId, p = p1, refund: { readonly refundId: RefundId; readonly amount: Money } = { refundId: r1, amount: eur("299.99") }) =>
  makeCommand(kind, fixed(o, p, kind === "place" ? eur("299.99") : refund.amount, userId, refund.refundId))

/** One command each, with a fresh command id and the fixed time `at`. */
export const cmd = {
  place: (o = orderId, amount = eur("299.99"), u = userId) => makeCommand("place", fixed(o, p1, amount, u)) as PlaceOrder,
  start: (p = p1, o = orderId) => makeCommand("start", fixed(o, p)) as StartPayment,
  succeed: (p = p1, o = orderId) => makeCommand("succeed", fixed(o, p)) as RecordPaymentSucceeded,
  fail: (p = p1, o = orderId) => makeCommand("fail", fixed(o, p)) as RecordPaymentFailed,
  cancel: (o = orderId) => makeCommand("cancel", fixed(o)) as CancelOrder
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

// ---- arbitraries ----

/** A few ids of each kind, so that the interesting cases (same order, same payment) recur. */
export const orderIds = [0xa, 0xb, 0xc].map(fixedOrderId)
export const paymentIds = ["22222222-2222-4222-8222-22222222222a", "22222222-2222-4222-8222-22222222222b"] as unknown as ReadonlyArray<PaymentId>
export const refundIds = ["44444444-4444-4444-8444-44444444444a", "44444444-4444-4444-8444-44444444444b"] as unknown as ReadonlyArray<RefundId>
export const userIds = ["11111111-1111-4111-8111-11111111111a", "11111111-1111-4111-8111-11111111111b"] as unknown as ReadonlyArray<UserId>

export const uuidArb = fc.uuid({ version: 4 }) as fc.Arbitrary<string>

/** Any valid amount: every currency, 1 minor unit up to 10^12 major units. */
export const moneyArb: fc.Arbitrary<Money> = fc
  .constantFrom(...currencyExponents.keys())
  .chain((currency) =>
    fc.bigInt({ min: 1n, max: 10n ** BigInt(12 + currencyExponents.get(currency)!) - 1n }).map((minor) =>
      new Money({ minor, currency: currency as Money["currency"] })
    )
  )

export const atArb = fc.date({ min: new Date("2020-01-01"), max: new Date("2030-01-01"), noInvalidDate: true })

/** The kinds commandArb draws from by default (PlaceOrder twice as likely; refunds in the mix). */
export const allKinds: ReadonlyArray<CommandKind> = ["place", "place", "start", "succeed", "fail", "cancel", "refund", "refundSucceed", "refundFail"]
/** Commands on an order that exists (StartPayment twice as likely; refunds in the mix). */
export const followUpKinds: ReadonlyArray<CommandKind> = ["start", "start", "succeed", "fail", "cancel", "refund", "refundSucceed", "refundFail"]

/** A command of one of `kinds` on one of `orders`, with one of a few payment ids, users and amounts. */
export const commandArb = (orders: ReadonlyArray<OrderId> = orderIds, kinds: ReadonlyArray<CommandKind> = allKinds): fc.Arbitrary<OrderCommand> =>
  fc.record({
    kind: fc.constantFrom(...kinds),
    commandId: uuidArb,
    orderId: fc.constantFrom(...orders),
    paymentId: fc.constantFrom(...paymentIds),
    refundId: fc.constantFrom(...refundIds),
    userId: fc.constantFrom(...userIds),
    amount: fc.constantFrom(eur("10.00"), eur("25.50")),
    at: atArb
  }).map(({ kind, ...fields }) => makeCommand(kind, fields))

/** `count` commands on an existing order, drawn from `seed`: the same seed, the same commands. */
export const sampleCommands = (order: OrderId, count: number, seed: number): ReadonlyArray<OrderCommand> =>
  fc.sample(commandArb([order], followUpKinds), { seed, numRuns: count })
