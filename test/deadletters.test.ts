/**
 * Dead letters as operators list them (PostgreSQL and the real broker: parking also publishes to the DLQ topic).
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { DeadLetters } from "../src/deadletter/DeadLetters.js"
import { onTestDatabase } from "./support/TestDatabase.js"
import { suiteId, TestKafka } from "./support/TestKafka.js"

const id = suiteId("deadletters")

describe("dead letters", () => {
  layer(onTestDatabase(id, DeadLetters.Default.pipe(Layer.provide(TestKafka(id)))), { excludeTestServices: true })((it) => {
    it.effect("regression: listed in the numeric order of their ids (\"9\" before \"10\")", () =>
      Effect.gen(function*() {
        // the list once ordered by the text of the id (the SELECT casts it): 1, 10, 11, 12, 2, …
        const deadLetters = yield* DeadLetters
        for (let offset = 0; offset < 12; offset++) {
          yield* deadLetters.park({
            consumer: "worker",
            message: {
              topic: "orders.events",
              partition: 0,
              offset: String(offset),
              key: null,
              value: Buffer.from("not an envelope"),
              headers: []
            },
            error: "undecodable",
            attempts: 0
          })
        }
        const ids = (yield* deadLetters.list(undefined, 100)).map((d) => Number(d.id))
        assert.strictEqual(ids.length, 12)
        assert.deepStrictEqual(ids, [...ids].sort((a, b) => a - b))
        assert.deepStrictEqual((yield* deadLetters.list("parked", 5)).map((d) => Number(d.id)), ids.slice(0, 5))
      }), { timeout: 60_000 })
  })
})
