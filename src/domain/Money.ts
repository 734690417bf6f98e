/**
 * Money: never a JS float. The API speaks decimal strings ("299.99"); the log and the projection keep integer
 * minor units (bigint) with an ISO-4217 currency. Parsing is strict: no sign, no exponent, no separators,
 * no more decimals than the currency has, nothing at or below zero, nothing absurdly large.
 */
import { Either, Schema } from "effect"

// ISO-4217 active currencies (funds and precious metals without minor units left out), by minor-unit digits.
const byExponent: ReadonlyArray<readonly [number, string]> = [
  [0, "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"],
  [3, "BHD IQD JOD KWD LYD OMR TND"],
  [4, "CLF UYW"],
  [
    2,
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD CAD CDF " +
    "CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD " +
    "HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT " +
    "MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR " +
    "SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU " +
    "UZS VED VES WST XCD XCG YER ZAR ZMW ZWG"
  ]
]

export const currencyExponents: ReadonlyMap<string, number> = new Map(
  byExponent.flatMap(([exp, codes]) => codes.split(" ").map((code) => [code, exp] as const))
)

export const Currency = Schema.String.pipe(
  Schema.filter((s) => currencyExponents.has(s), { message: () => "currency must be an ISO-4217 code such as EUR" }),
  Schema.brand("Currency")
)
export type Currency = typeof Currency.Type

/** Largest accepted amount: below 10^12 major units of any currency. */
export const MAX_INTEGER_DIGITS = 12

/** Minor units are below this (10^12 major units of a 4-decimal currency). */
export const MINOR_LIMIT = 10n ** 16n

/** Amount in integer minor units with its currency, as kept in events and the projection. */
export class Money extends Schema.Class<Money>("Money")({
  minor: Schema.BigInt.pipe(Schema.positiveBigInt(), Schema.lessThanBigInt(MINOR_LIMIT)),
  currency: Currency
}) {}

export class InvalidAmount extends Schema.TaggedError<InvalidAmount>()("InvalidAmount", {
  amount: Schema.String,
  currency: Schema.String,
  message: Schema.String
}) {}

const decimal = /^(0|[1-9][0-9]*)(?:\.([0-9]+))?$/

/** Parse a decimal string in a currency into minor units. */
export const parseMoney = (amount: string, currency: string): Either.Either<Money, InvalidAmount> => {
  const fail = (message: string) => Either.left(new InvalidAmount({ amount, currency, message }))
  const exponent = currencyExponents.get(currency)
  if (exponent === undefined) return fail(`unknown currency ${JSON.stringify(currency)}: use an ISO-4217 code`)
  const match = decimal.exec(amount)
  if (match === null) {
    return fail("amount must be a decimal string of digits with an optional fraction, e.g. \"299.99\"")
  }
  const [, whole, fraction = ""] = match as unknown as [string, string, string | undefined]
  if (fraction.length > exponent) {
    return fail(`${currency} allows at most ${exponent} decimal${exponent === 1 ? "" : "s"}`)
  }
  if (whole.length > MAX_INTEGER_DIGITS) return fail(`amount must be below 10^${MAX_INTEGER_DIGITS} ${currency}`)
  const minor = BigInt(whole + fraction.padEnd(exponent, "0"))
  if (minor <= 0n) return fail("amount must be greater than zero")
  // every rule of the class was checked above (currency known, 0 < minor < 10^16): no second validation
  return Either.right(new Money({ minor, currency: currency as Currency }, { disableValidation: true }))
}

/** Format minor units as the canonical decimal string of the currency ("299.90", "5", "1.250"). */
export const formatMoney = (money: Money): string => {
  const exponent = currencyExponents.get(money.currency) ?? 2
  if (exponent === 0) return money.minor.toString()
  const digits = money.minor.toString().padStart(exponent + 1, "0")
  return `${digits.slice(0, -exponent)}.${digits.slice(-exponent)}`
}
