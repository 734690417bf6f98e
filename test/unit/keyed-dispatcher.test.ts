/**
 * The keyed dispatcher's promise (src/kafka/KeyedDispatcher.ts), which nothing downstream notices when broken
 * (duplicates are absorbed by the inbox): the messages of one key are handled one at a time, in offset order,
 * while different keys overlap; and a message the consumer skips (`skip`) is finished without a handler
 * call, in its place — it never lets the committed offset pass an unfinished message of another key.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Random } from "effect"
import type { IncomingMessage } from "../../src/kafka/Kafka.js"
import { makeKeyedDispatcher } from "../../src/kafka/KeyedDispatcher.js"

const message = (key: string, offset: number, type = "OrderPlaced"): IncomingMessage => ({
  topic: "t",
  partition: 0,
  offset: String(offset),
  key: Buffer.from(key),
  value: Buffer.from(`${key}:${offset}`),
  headers: [["event-type", Buffer.from(type)]]
})

describe("KeyedDispatcher", () => {
  it.live("one key's messages never overlap and run in offset order; other keys run concurrently", () =>
    Effect.gen(function*() {
      const running = new Map<string, number>()
      const seen = new Map<string, Array<number>>()
      let overlaps = 0
      let concurrentKeys = 0
      const handle = (m: IncomingMessage) =>
        Effect.gen(function*() {
          const key = Buffer.from(m.key!).toString()
          if ((running.get(key) ?? 0) > 0) overlaps++
          running.set(key, (running.get(key) ?? 0) + 1)
          concurrentKeys = Math.max(concurrentKeys, [...running.values()].filter((n) => n > 0).length)
          seen.set(key, [...(seen.get(key) ?? []), Number(m.offset)])
          // a random wait: a later message of the key would overtake an earlier one were they not serialized
          yield* Effect.sleep(yield* Random.nextIntBetween(0, 4))
          running.set(key, running.get(key)! - 1)
        })
      const dispatcher = yield* makeKeyedDispatcher(handle)
      const keys = Array.from({ length: 12 }, (_, i) => `k${i}`)
      const offsets = new Map<string, Array<number>>()
      for (let offset = 0; offset < 360; offset++) {
        const key = keys[(offset * 7 + Math.floor(offset / 5)) % keys.length]!
        offsets.set(key, [...(offsets.get(key) ?? []), offset])
        assert.isTrue(dispatcher.offer(message(key, offset)))
        // fetches arrive while earlier ones are still being handled
        if (offset % 40 === 39) yield* Effect.sleep(2)
      }
      yield* dispatcher.awaitIdle
      assert.strictEqual(overlaps, 0, "a key's messages overlapped")
      assert.isAbove(concurrentKeys, 1, "different keys did not run concurrently")
      for (const key of keys) assert.deepStrictEqual(seen.get(key), offsets.get(key), `${key} out of offset order`)
      assert.deepStrictEqual(dispatcher.committable().map((c) => c.offset), [360n])
    }).pipe(Effect.scoped))

  it.live("a skipped message is finished without the handler, and never carries the commit past unfinished work", () =>
    Effect.gen(function*() {
      const handled: Array<string> = []
      let release: () => void = () => undefined
      const gate = new Promise<void>((r) => (release = r))
      const handle = (m: IncomingMessage) =>
        Effect.gen(function*() {
          if (m.offset === "0") yield* Effect.promise(() => gate)
          handled.push(m.offset)
        })
      const dispatcher = yield* makeKeyedDispatcher(handle, undefined, (m) => m.headers.some(([n, v]) => n === "event-type" && Buffer.from(v).toString() === "OrderPaid"))
      dispatcher.offer(message("a", 0))
      dispatcher.offer(message("b", 1, "OrderPaid"))
      dispatcher.offer(message("b", 2, "OrderPaid"))
      // offset 0 is still running: the commit stays at it, though 1 and 2 are done
      assert.deepStrictEqual(dispatcher.committable().map((c) => c.offset), [0n])
      assert.strictEqual(dispatcher.inFlight("t", 0), 1)
      release()
      yield* dispatcher.awaitIdle
      assert.deepStrictEqual(handled, ["0"])
      assert.deepStrictEqual(dispatcher.committable().map((c) => c.offset), [3n])
    }).pipe(Effect.scoped))

  it.live("maxConcurrent bounds the handlers running at once, across keys; every message is still handled", () =>
    Effect.gen(function*() {
      let running = 0
      let most = 0
      let handled = 0
      const handle = () =>
        Effect.gen(function*() {
          running++
          most = Math.max(most, running)
          yield* Effect.sleep(2)
          running--
          handled++
        })
      const dispatcher = yield* makeKeyedDispatcher(handle, undefined, undefined, 3)
      for (let offset = 0; offset < 60; offset++) dispatcher.offer(message(`k${offset % 20}`, offset))
      yield* dispatcher.awaitIdle
      assert.strictEqual(handled, 60)
      assert.strictEqual(most, 3)
      assert.deepStrictEqual(dispatcher.committable().map((c) => c.offset), [60n])
    }).pipe(Effect.scoped))
})
