/** given(events).when(command).then(events | rejection | nothing): specifications of the pure decider. */
import { assert } from "@effect/vitest"
import { Either } from "effect"
import type { OrderCommand, OrderEvent, Rejection } from "../../src/domain/Order.js"
import { decide, fold } from "../../src/domain/OrderDecider.js"

const show = (value: unknown) =>
  JSON.stringify(value, (_, v) => (typeof v === "bigint" ? v.toString() : v))

export const given = (...history: ReadonlyArray<OrderEvent>) => ({
  when: (command: OrderCommand) => {
    const decision = decide(command, fold(history))
    return {
      then: (...expected: ReadonlyArray<OrderEvent>) => {
        assert.isTrue(Either.isRight(decision), `expected events, got ${show(decision)}`)
        assert.deepStrictEqual(Either.getOrThrow(decision), expected)
      },
      thenNothing: () => {
        assert.isTrue(Either.isRight(decision), `expected no events, got ${show(decision)}`)
        assert.deepStrictEqual(Either.getOrThrow(decision), [])
      },
      thenRejected: (tag: Rejection["_tag"]) => {
        assert.isTrue(Either.isLeft(decision), `expected ${tag}, got ${show(decision)}`)
        if (Either.isLeft(decision)) assert.strictEqual(decision.left._tag, tag)
      }
    }
  }
})
