/**
 * The Kafka envelope (src/kafka/Envelope.ts): a deep value is refused by the depth check itself (not by a
 * stack overflow caught further out); a stored event travels as stored, so a consumer upcasts an old shape
 * exactly once; the worker skips, by header alone, only the event types it does not act on.
 */
import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import { decodeEventWith, schemaVersions, type Upcaster } from "../../src/eventstore/EventCodec.js"
import type { OutboxEventRow } from "../../src/eventstore/EventRows.js"
import { fromMessage, MAX_DEPTH, messageOfRow } from "../../src/kafka/Envelope.js"
import { skipsMessage } from "../../src/payment/PaymentWorker.js"

const orderId = "01a24b25-6973-7286-80a7-603d0369bd2d"
const eventId = "01a24b25-699d-704f-b4f7-637d1eab0001"

describe("Envelope", () => {
  it("a value nested 5,000 deep (under the size cap) is parked for its depth, before anything parses it", () => {
    const deep = "[".repeat(5000) + "]".repeat(5000)
    const decoded = fromMessage(Buffer.from(deep), null)
    assert.isTrue(Either.isLeft(decoded))
    assert.strictEqual(Either.getLeft(decoded).pipe((l) => l._tag === "Some" ? l.value : ""), `JSON nested deeper than ${MAX_DEPTH}`)
  })

  it("an event stored at v1 and read by a program at v2 is upcast exactly once on its way through Kafka", () => {
    // v1 of OrderPlaced had `total` where v2 has `amount`; the upcaster counts its calls
    let upcasts = 0
    const upcaster: Upcaster = ({ total, ...rest }) => {
      upcasts++
      return { ...rest, amount: total }
    }
    const decode = decodeEventWith({ versions: { ...schemaVersions, OrderPlaced: 2 }, upcasters: { OrderPlaced: { 1: upcaster } } })
    const storedV1 = {
      eventId,
      orderId,
      userId: "8f0e2d0a-3f5e-4a7b-9c1d-2e3f4a5b6c7d",
      total: { minor: "29999", currency: "EUR" },
      occurredAt: "2026-12-06T10:00:00.000Z"
    }
    const row: OutboxEventRow = {
      position: "42",
      event_id: eventId,
      stream_id: orderId,
      version: 1,
      type: "OrderPlaced",
      schema_version: 1,
      data: storedV1,
      metadata: { correlationId: "c-1" },
      recorded_at: new Date("2026-12-06T10:00:00.000Z")
    }
    const message = messageOfRow(row)
    assert.strictEqual(message.headers["schema-version"], "1")
    const consumed = fromMessage(message.value, orderId, decode)
    assert.isTrue(Either.isRight(consumed), Either.isLeft(consumed) ? consumed.left : "")
    assert.strictEqual(upcasts, 1)
    const { envelope, event } = Either.getOrThrow(consumed)
    assert.strictEqual(envelope.schemaVersion, 1)
    assert.deepStrictEqual(envelope.data, storedV1)
    assert.strictEqual(event._tag, "OrderPlaced")
    assert.strictEqual(event._tag === "OrderPlaced" ? event.amount.minor : 0n, 29999n)
  })

  it("the worker skips by header only the event types it does nothing with", () => {
    const withType = (...types: Array<string | Uint8Array>) => ({
      topic: "t",
      partition: 0,
      offset: "1",
      key: null,
      value: null,
      headers: types.map((t) => ["event-type", typeof t === "string" ? Buffer.from(t) : t] as const)
    })
    assert.isTrue(skipsMessage(withType("OrderPaid")))
    assert.isTrue(skipsMessage(withType("PaymentRequested")))
    assert.isFalse(skipsMessage(withType("OrderPlaced")))
    assert.isFalse(skipsMessage(withType()))
    assert.isFalse(skipsMessage(withType("NoSuchEvent")))
    assert.isFalse(skipsMessage(withType(Buffer.from([0xc3]))))
    assert.isFalse(skipsMessage(withType("OrderPaid", "OrderPlaced")))
  })
})
