/**
 * P7 — schemas: every event and command round-trips through its encoded (JSON) form, and through the event
 * codec the store and Kafka use (type + schema version + data); old versions are upcast to the current shape
 * (the mechanism, with an evolution defined in the test: no production event type has an old version yet);
 * a version newer than the program is refused.
 * P8 — money: parse(format(m)) = m for every amount of every currency; every string that is not the strict
 * decimal grammar, or has too many decimals for the currency, is rejected.
 */
import { describe, it } from "@effect/vitest"
import { Arbitrary, Either, FastCheck, Schema } from "effect"
import { currencyExponents, formatMoney, Money, parseMoney } from "../src/domain/Money.js"
import { OrderCommand, OrderEvent, OrderPlaced } from "../src/domain/Order.js"
import { decodePlaceOrderBodyFast, PlaceOrderBody } from "../src/orders/Api.js"
import {
  decodeEvent,
  decodeEventWith,
  encodeEvent,
  encodeEventDataBySchema,
  encodeEventDataFast,
  fastEncodedTypes,
  schemaVersions
} from "../src/eventstore/EventCodec.js"
import { moneyArb } from "../test/support/fixtures.js"
import { fc, params, runsFor } from "./support.js"

const roundTrip = <A, I>(schema: Schema.Schema<A, I>) => {
  const encode = Schema.encodeSync(schema)
  const decode = Schema.decodeUnknownSync(schema)
  return (value: A) => decode(JSON.parse(JSON.stringify(encode(value))))
}

const same = (a: unknown, b: unknown) => JSON.stringify(a, big) === JSON.stringify(b, big)
const big = (_: string, v: unknown) => (typeof v === "bigint" ? `${v}n` : v instanceof Date ? v.toISOString() : v)

/**
 * A pure predicate run as an async property that lets the event loop turn every 50 runs: 1,000
 * Schema-derived runs take up to 40 s, and a vitest worker that long without a turn misses its RPC
 * ("Timeout calling onTaskUpdate", seen once on a clean clone).
 */
let runs = 0
const yielding = <A extends Array<unknown>>(predicate: (...args: A) => boolean | void) => async (...args: A) => {
  if (++runs % 50 === 0) await new Promise((resolve) => setImmediate(resolve))
  return predicate(...args)
}

// Schema-derived arbitraries come from the fast-check that effect bundles: run them with that one.
describe("P7 schemas", () => {
  it("events round-trip through JSON and through the event codec", async () => {
    const viaJson = roundTrip(OrderEvent)
    await FastCheck.assert(
      FastCheck.asyncProperty(
        Arbitrary.make(OrderEvent),
        yielding((event) => {
          if (!same(viaJson(event), event)) throw new Error("JSON round trip changed the event")
          const stored = JSON.parse(JSON.stringify(encodeEvent(event)))
          if (!same(decodeEvent(stored.type, stored.schemaVersion, stored.data), event)) throw new Error("codec round trip")
        })
      ),
      params("pure")
    )
  }, 300_000)

  // issue 24: the store encodes events without the schema's machinery (EventCodec `encodeEventDataFast`); the
  // schema stays the reference — the same bytes for every valid event, and every event it refuses refused
  it("the fast event encoding writes what the schema writes, for every event type", async () => {
    if (fastEncodedTypes.length !== OrderEvent.members.length) throw new Error(`fast: ${fastEncodedTypes.join(",")}`)
    await FastCheck.assert(
      FastCheck.asyncProperty(Arbitrary.make(OrderEvent), yielding((event) => {
        const fast = encodeEventDataFast(event)
        if (fast === undefined) throw new Error(`no fast encoding for a valid ${event._tag}`)
        return JSON.stringify(fast) === JSON.stringify(encodeEventDataBySchema(event))
      })),
      params("pure")
    )
  }, 300_000)

  it("the fast event encoding refuses whatever the schema refuses (one field broken)", async () => {
    const upper = "0192A1B2-0000-7000-8000-00000000000A"
    const broken: ReadonlyArray<unknown> = [
      "not-a-uuid", upper, "", "x".repeat(501), new Date(Number.NaN), -1, 1.5, Number.NaN, null, undefined, {}, 7n,
      new Money({ minor: 0n, currency: "EUR" } as never, { disableValidation: true }),
      new Money({ minor: 10n ** 16n, currency: "EUR" } as never, { disableValidation: true }),
      new Money({ minor: 100n, currency: "XXX" } as never, { disableValidation: true }),
      { minor: 100n, currency: "EUR" }
    ]
    const outcome = (encode: (e: never) => unknown, event: unknown) => {
      try {
        return JSON.stringify(encode(event as never))
      } catch {
        return "refused"
      }
    }
    await FastCheck.assert(
      FastCheck.asyncProperty(
        Arbitrary.make(OrderEvent),
        FastCheck.nat(),
        FastCheck.constantFrom(...broken),
        yielding((event, which, value) => {
          const fields = Object.keys(event.constructor === Object ? event : (event.constructor as unknown as { fields: object }).fields)
            .filter((name) => name !== "_tag")
          const field = fields[which % fields.length]!
          const Class = event.constructor as new(props: unknown, options: { disableValidation: boolean }) => unknown
          const bad = new Class({ ...event, [field]: value }, { disableValidation: true })
          const bySchema = outcome(encodeEventDataBySchema, bad)
          const fast = encodeEventDataFast(bad as never)
          // the fast one may leave a value to the schema; what it encodes, the schema encodes the same (and so
          // never what the schema refuses)
          if (fast !== undefined && JSON.stringify(fast) !== bySchema) throw new Error(`${field}=${String(value)}: ${JSON.stringify(fast)} vs ${bySchema}`)
          return true
        })
      ),
      params("pure")
    )
  }, 300_000)

  // issue 24: POST /orders decodes the usual body in plain code (`decodePlaceOrderBodyFast`), leaving the rest to
  // the schema: what one accepts the other accepts, with the same value — so every body the schema refuses is
  // refused with the schema's message, and no valid body costs the schema's decode
  it("the fast POST /orders body decoding accepts exactly what the schema accepts, as the schema decodes it", () => {
    const decode = Schema.decodeUnknownEither(PlaceOrderBody, { errors: "all", onExcessProperty: "error" })
    const mixedCase = fc.tuple(fc.uuid(), fc.array(fc.boolean(), { minLength: 36, maxLength: 36 }))
      .map(([id, up]) => [...id].map((c, i) => (up[i] ? c.toUpperCase() : c)).join(""))
    const text = fc.oneof(fc.string(), fc.constantFrom("EUR", "299.99", ""))
    const field = fc.oneof(text, fc.uuid(), mixedCase, fc.integer(), fc.constant(null), fc.jsonValue())
    const shaped = fc.tuple(
      fc.record({ userId: fc.oneof(fc.uuid(), mixedCase, field), amount: fc.oneof(text, field), currency: fc.oneof(text, field) }, {
        requiredKeys: []
      }),
      fc.oneof(fc.constant({}), fc.dictionary(fc.oneof(fc.string(), fc.constantFrom("__proto__", "userId", "constructor")), fc.jsonValue(), { maxKeys: 2 }))
    ).map(([known, extra]) => JSON.parse(JSON.stringify({ ...extra, ...known })) as unknown)
    fc.assert(
      fc.property(fc.oneof({ arbitrary: shaped, weight: 4 }, { arbitrary: fc.jsonValue(), weight: 1 }), (json) => {
        const bySchema = decode(json)
        const fast = decodePlaceOrderBodyFast(json)
        if (Either.isRight(bySchema) !== (fast !== undefined)) {
          throw new Error(`${JSON.stringify(json)}: schema ${Either.isRight(bySchema) ? "accepts" : "refuses"}, fast ${fast === undefined ? "leaves it" : "accepts"}`)
        }
        if (fast !== undefined && JSON.stringify(fast) !== JSON.stringify(Either.getOrThrow(bySchema))) {
          throw new Error(`${JSON.stringify(json)}: ${JSON.stringify(fast)} vs ${JSON.stringify(bySchema)}`)
        }
      }),
      { ...params("pure"), numRuns: runsFor("pure") * 10 }
    )
    // valid bodies are decoded in plain code (else the property would hold of a decoder that accepts nothing),
    // a mixed-case id lower-cased as the schema does; and what JSON.parse never makes is the schema's
    const id = "0192A1B2-0c3d-7E4f-8a5b-6C7D8E9F0A1B"
    for (const body of [{ userId: id, amount: "299.99", currency: "EUR" }, { currency: "USD", amount: "1", userId: id.toLowerCase() }]) {
      const fast = decodePlaceOrderBodyFast(body)
      if (fast === undefined || JSON.stringify(fast) !== JSON.stringify(Either.getOrThrow(decode(body)))) throw new Error(`not fast: ${JSON.stringify(body)}`)
    }
    const valid = { userId: id, amount: "1", currency: "EUR" }
    const hidden = Object.defineProperty({ ...valid }, "extra", { value: 1, enumerable: false })
    for (const odd of [{ ...valid, [Symbol("extra")]: 1 }, hidden, Object.assign(Object.create({ inherited: 1 }), valid)]) {
      if (decodePlaceOrderBodyFast(odd) !== undefined) throw new Error("decoded an object JSON.parse never makes")
    }
  })

  it("commands round-trip through JSON", async () => {
    const viaJson = roundTrip(OrderCommand)
    await FastCheck.assert(
      FastCheck.asyncProperty(Arbitrary.make(OrderCommand), yielding((command) => same(viaJson(command), command))),
      params("pure")
    )
  }, 300_000)

  it("old versions are upcast step by step to the current shape (a test evolution: every production type is at v1)", async () => {
    // OrderPlaced as if it had evolved: v1 kept the amount as a decimal string and the currency beside it,
    // v2 moved to {minor, currency}, v3 (current) renamed `placedAt` to `occurredAt`
    const registry = {
      versions: { ...schemaVersions, OrderPlaced: 3 },
      upcasters: {
        OrderPlaced: {
          // "299.90" → 29990: the decimal string of the currency's exact precision, without its point
          1: ({ amount, currency, ...rest }: Record<string, unknown>) => ({
            ...rest,
            amount: { minor: BigInt((amount as string).replace(".", "")).toString(), currency }
          }),
          2: ({ placedAt, ...rest }: Record<string, unknown>) => ({ ...rest, occurredAt: placedAt })
        }
      }
    }
    const decodeOld = decodeEventWith(registry)
    await FastCheck.assert(
      FastCheck.asyncProperty(Arbitrary.make(OrderPlaced), yielding((event) => {
        const current = encodeEvent(event).data
        const { amount, occurredAt, ...rest } = current as { amount: { minor: string; currency: string }; occurredAt: string }
        const v2 = { ...rest, amount, placedAt: occurredAt }
        const v1 = { ...rest, amount: formatMoney(event.amount), currency: event.amount.currency, placedAt: occurredAt }
        return same(decodeOld("OrderPlaced", 1, JSON.parse(JSON.stringify(v1))), event) &&
          same(decodeOld("OrderPlaced", 2, JSON.parse(JSON.stringify(v2))), event) &&
          same(decodeOld("OrderPlaced", 3, JSON.parse(JSON.stringify(current))), event)
      })),
      params("pure")
    )
  }, 300_000)

  it("an event of a schema version newer than the program is refused, not misread", async () => {
    await FastCheck.assert(
      FastCheck.asyncProperty(Arbitrary.make(OrderEvent), FastCheck.integer({ min: 2, max: 50 }), yielding((event, version) => {
        const stored = encodeEvent(event)
        try {
          decodeEvent(stored.type, version, stored.data)
          return false
        } catch {
          return true
        }
      })),
      params("pure")
    )
  }, 300_000)
})

describe("P8 money", () => {
  it("parse(format(m)) = m for every currency", () => {
    fc.assert(
      fc.property(moneyArb, (money) => {
        const parsed = parseMoney(formatMoney(money), money.currency)
        return Either.isRight(parsed) && parsed.right.minor === money.minor && parsed.right.currency === money.currency
      }),
      params("pure")
    )
  })

  const strict = /^(0|[1-9][0-9]*)(\.[0-9]+)?$/
  it("strings outside the strict decimal grammar are rejected", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), fc.constantFrom(...currencyExponents.keys()), (text, currency) => {
        fc.pre(!strict.test(text))
        return Either.isLeft(parseMoney(text, currency))
      }),
      params("pure")
    )
  }, 300_000)

  it("more decimals than the currency allows, zero and absurd magnitudes are rejected", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...currencyExponents.keys()),
        fc.bigInt({ min: 0n, max: 10n ** 15n }),
        fc.integer({ min: 1, max: 4 }),
        (currency, whole, extra) => {
          const exponent = currencyExponents.get(currency)!
          const tooPrecise = `${whole}.${"1".repeat(exponent + extra)}`
          const zero = exponent === 0 ? "0" : `0.${"0".repeat(exponent)}`
          const huge = `1${"0".repeat(12)}`
          return [tooPrecise, zero, huge].every((a) => Either.isLeft(parseMoney(a, currency)))
        }
      ),
      params("pure")
    )
  }, 300_000)
})
