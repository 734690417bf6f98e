/**
 * Shared harness of the property suite: run counts, seeds, arbitraries, and the layers every property is run
 * against (in-memory and PostgreSQL).
 *
 * Runs: `npm test` → PROPERTY_RUNS_FAST (default 200) for pure/in-memory properties and PROPERTY_RUNS_PG
 * (default 20) for PostgreSQL-backed ones; `npm run test:props` sets PROPERTY_RUNS_FULL=1 → 1000 / 100.
 * PROPERTY_RUNS overrides both. A failure prints its seed and path; FC_SEED=… FC_PATH=… replay it exactly.
 */
import { Either } from "effect"
import fc from "fast-check"
import { currencyExponents, Money, parseMoney } from "../src/domain/Money.js"
import {
  CancelOrder,
  type OrderCommand,
  type OrderId,
  type PaymentId,
  PlaceOrder,
  RecordPaymentFailed,
  RecordPaymentSucceeded,
  StartPayment,
  type UserId
} from "../src/domain/Order.js"

const full = process.env.PROPERTY_RUNS_FULL === "1"
const override = process.env.PROPERTY_RUNS ? Number(process.env.PROPERTY_RUNS) : undefined

export type Backend = "memory" | "postgres"

export const runsFor = (backend: Backend | "pure") =>
  override ?? (backend === "postgres"
    ? Number(process.env.PROPERTY_RUNS_PG ?? (full ? 100 : 20))
    : Number(process.env.PROPERTY_RUNS_FAST ?? (full ? 1000 : 200)))

/** fast-check parameters: run count, and the seed/path to replay when FC_SEED / FC_PATH are set. */
export const params = (backend: Backend | "pure"): { numRuns: number; seed?: number; path?: string; verbose: 1 } => ({
  numRuns: runsFor(backend),
  ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}),
  ...(process.env.FC_PATH ? { path: process.env.FC_PATH } : {}),
  verbose: 1 as const
})

// ---- arbitraries ----

export const orderIds = ["01900000-0000-7000-8000-00000000000a", "01900000-0000-7000-8000-00000000000b", "01900000-0000-7000-8000-00000000000c"] as unknown as ReadonlyArray<OrderId>
export const paymentIds = ["22222222-2222-4222-8222-22222222222a", "22222222-2222-4222-8222-22222222222b"] as unknown as ReadonlyArray<PaymentId>
export const userIds = ["11111111-1111-4111-8111-11111111111a", "11111111-1111-4111-8111-11111111111b"] as unknown as ReadonlyArray<UserId>

export const uuid = fc.uuid({ version: 4 }) as fc.Arbitrary<string>

export const moneyArb: fc.Arbitrary<Money> = fc
  .constantFrom(...currencyExponents.keys())
  .chain((currency) =>
    fc.bigInt({ min: 1n, max: 10n ** BigInt(12 + currencyExponents.get(currency)!) - 1n }).map((minor) =>
      new Money({ minor, currency: currency as Money["currency"] })
    )
  )

const at = fc.date({ min: new Date("2020-01-01"), max: new Date("2030-01-01"), noInvalidDate: true })

/** A command on one of a few orders with one of a few payment ids, so that the interesting cases recur. */
export const commandArb = (orders: ReadonlyArray<OrderId> = orderIds): fc.Arbitrary<OrderCommand> =>
  fc.record({
    kind: fc.constantFrom("place", "place", "start", "succeed", "fail", "cancel"),
    commandId: uuid,
    orderId: fc.constantFrom(...orders),
    paymentId: fc.constantFrom(...paymentIds),
    userId: fc.constantFrom(...userIds),
    amount: fc.constantFrom(...["10.00", "25.50"].map((a) => Either.getOrThrow(parseMoney(a, "EUR")))),
    at
  }).map(({ amount, at, commandId, kind, orderId, paymentId, userId }): OrderCommand => {
    const base = { commandId: commandId as PlaceOrder["commandId"], orderId, at }
    switch (kind) {
      case "place":
        return new PlaceOrder({ ...base, userId, amount })
      case "start":
        return new StartPayment({ ...base, paymentId })
      case "succeed":
        return new RecordPaymentSucceeded({ ...base, paymentId })
      case "fail":
        return new RecordPaymentFailed({ ...base, paymentId, reason: "declined" })
      default:
        return new CancelOrder({ ...base, reason: "changed my mind" })
    }
  })

export { fc }
