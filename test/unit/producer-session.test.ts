/**
 * The producer session (src/kafka/ProducerSession.ts): a producer whose send failed is replaced — above all one
 * whose idempotent session broke, the broker answering OUT_OF_ORDER_SEQUENCE_NUMBER to every send, as after the
 * chaos suite's seed 1008 (broker paused, then killed, under load) — so the next send goes through a new one.
 */
import { describe, expect, it } from "vitest"
import { breaksSession, makeProducerSession } from "../../src/kafka/ProducerSession.js"

/** kafkajs's shape of a protocol error (KafkaJSProtocolError: message, type, code, retriable). */
const protocolError = (type: string) => Object.assign(new Error(`broker said ${type}`), { type, retriable: false })

/** Fake producers, numbered as made; each fails its sends with what `failWith` says for it (or succeeds). */
const fakes = (failWith: (producer: number, send: number) => Error | undefined, connectFails = (_: number) => false) => {
  const made: Array<{ sends: number; disconnected: boolean }> = []
  const open = () => {
    const n = made.length
    const state = { sends: 0, disconnected: false }
    made.push(state)
    return {
      connect: () => connectFails(n) ? Promise.reject(new Error("connect refused")) : Promise.resolve(),
      disconnect: () => (state.disconnected = true, Promise.resolve()),
      send: () => {
        const error = failWith(n, state.sends++)
        return error ? Promise.reject(error) : Promise.resolve([])
      }
    }
  }
  return { made, open: open as never }
}

const record = { topic: "t", messages: [{ key: "k", value: "v" }] }

describe("producer session", () => {
  it("a producer whose sends fail with OUT_OF_ORDER_SEQUENCE_NUMBER is replaced; the next send goes through", async () => {
    // the first producer's session is broken for good: every send of it fails
    const { made, open } = fakes((producer) => producer === 0 ? protocolError("OUT_OF_ORDER_SEQUENCE_NUMBER") : undefined)
    const renewed: Array<string> = []
    const session = makeProducerSession(open, (why) => renewed.push(why))
    await session.start()
    await expect(session.send(record)).rejects.toThrow(/OUT_OF_ORDER_SEQUENCE_NUMBER/)
    await expect(session.send(record)).resolves.toEqual([])
    expect(renewed).toEqual(["OUT_OF_ORDER_SEQUENCE_NUMBER"])
    expect(made.map((m) => [m.sends, m.disconnected])).toEqual([[1, true], [1, false]])
  })

  it("concurrent sends failing on the same broken producer replace it once", async () => {
    const { made, open } = fakes((producer) => producer === 0 ? protocolError("UNKNOWN_PRODUCER_ID") : undefined)
    const renewed: Array<string> = []
    const session = makeProducerSession(open, (why) => renewed.push(why))
    await session.start()
    const results = await Promise.allSettled([session.send(record), session.send(record), session.send(record)])
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected", "rejected"])
    expect(renewed).toEqual(["UNKNOWN_PRODUCER_ID"])
    expect(made.length).toBe(2)
    await expect(session.send(record)).resolves.toEqual([])
  })

  it("any failed send retires its producer (kafkajs took its sequence numbers back: reusing them is unsafe)", async () => {
    const { made, open } = fakes((producer, send) => producer === 0 && send === 1 ? new Error("Connection error: ECONNREFUSED") : undefined)
    const renewed: Array<string> = []
    const session = makeProducerSession(open, (why) => renewed.push(why))
    await session.start()
    await expect(session.send(record)).resolves.toEqual([])
    await expect(session.send(record)).rejects.toThrow(/ECONNREFUSED/)
    await expect(session.send(record)).resolves.toEqual([])
    expect(renewed).toEqual(["send failed: Connection error: ECONNREFUSED"])
    expect(made.map((m) => [m.sends, m.disconnected])).toEqual([[2, true], [1, false]])
  })

  it("a replacement that cannot connect is replaced again by the next send", async () => {
    const { made, open } = fakes(
      (producer) => producer === 0 ? protocolError("OUT_OF_ORDER_SEQUENCE_NUMBER") : undefined,
      (producer) => producer === 1
    )
    const renewed: Array<string> = []
    const session = makeProducerSession(open, (why) => renewed.push(why))
    await session.start()
    await expect(session.send(record)).rejects.toThrow(/OUT_OF_ORDER/)
    await expect(session.send(record)).rejects.toThrow(/connect refused/)
    await expect(session.send(record)).resolves.toEqual([])
    expect(renewed).toEqual(["OUT_OF_ORDER_SEQUENCE_NUMBER", "connect failed"])
    expect(made.length).toBe(3)
  })

  it("finds the type in a wrapped cause (kafkajs's retrier wraps the last error)", () => {
    const wrapped = Object.assign(new Error("retries exhausted"), { cause: protocolError("INVALID_PRODUCER_EPOCH") })
    expect(breaksSession(wrapped)).toBe("INVALID_PRODUCER_EPOCH")
    expect(breaksSession(Object.assign(new Error("several"), { errors: [new Error("x"), protocolError("PRODUCER_FENCED")] }))).toBe("PRODUCER_FENCED")
    expect(breaksSession(new Error("plain"))).toBeUndefined()
    expect(breaksSession(protocolError("REQUEST_TIMED_OUT"))).toBeUndefined()
  })
})
