/** Money parsing: decimal strings in, integer minor units out; every malformed or absurd amount refused. */
import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import { formatMoney, parseMoney } from "../src/domain/Money.js"

const minor = (amount: string, currency: string) => Either.getOrThrow(parseMoney(amount, currency)).minor

describe("parseMoney", () => {
  it("parses to minor units of the currency", () => {
    assert.strictEqual(minor("299.99", "EUR"), 29999n)
    assert.strictEqual(minor("10.1", "EUR"), 1010n)
    assert.strictEqual(minor("10", "EUR"), 1000n)
    assert.strictEqual(minor("5", "JPY"), 5n)
    assert.strictEqual(minor("1.234", "KWD"), 1234n)
    assert.strictEqual(minor("0.01", "USD"), 1n)
    assert.strictEqual(minor("999999999999.99", "EUR"), 99999999999999n)
  })

  for (const [amount, currency] of [
    ["1e3", "EUR"], ["10.001", "EUR"], ["5.5", "JPY"], ["5.0", "JPY"], ["-1", "EUR"], ["0", "EUR"], ["0.00", "EUR"],
    ["1,000.00", "EUR"], ["1000000000000", "EUR"], ["", "EUR"], [" 1", "EUR"], ["01", "EUR"], ["1.", "EUR"],
    [".5", "EUR"], ["+1", "EUR"], ["0x10", "EUR"], ["Infinity", "EUR"], ["NaN", "EUR"], ["1", "XXX"], ["1", "eur"],
    ["1", "EU"], ["1", "EURO"], ["１", "EUR"]
  ] as const) {
    it(`rejects ${JSON.stringify(amount)} ${currency}`, () => {
      assert.isTrue(Either.isLeft(parseMoney(amount, currency)))
    })
  }

  it("formats back to the canonical string", () => {
    for (const [amount, currency, canonical] of [
      ["299.99", "EUR", "299.99"], ["10.1", "EUR", "10.10"], ["0.05", "EUR", "0.05"], ["7", "JPY", "7"],
      ["1.5", "BHD", "1.500"]
    ] as const) {
      assert.strictEqual(formatMoney(Either.getOrThrow(parseMoney(amount, currency))), canonical)
    }
  })
})
