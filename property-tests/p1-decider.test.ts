/**
 * P1 — the decider (invariant 3, and 2 for versions: docs/ARCHITECTURE.md "Invariants").
 * For random command sequences: every emitted event is a legal successor of the state before it; a rejected
 * command emits nothing and leaves the state as it was; `evolve` is total and deterministic; the version is
 * the number of events folded; a command decided twice on the state it produced is already satisfied.
 */
import { describe, it } from "@effect/vitest"
import { Either } from "effect"
import type { OrderEvent, OrderState } from "../src/domain/Order.js"
import { decide, evolve, fold } from "../src/domain/OrderDecider.js"
import { illegalSuccessor } from "../test/support/invariants.js"
import { commandArb, orderIds } from "../test/support/fixtures.js"
import { fc, params } from "./support.js"

describe("P1 decider", () => {
  it("random command sequences: only legal transitions, rejections emit nothing, version = events", () => {
    fc.assert(
      fc.property(fc.array(commandArb([orderIds[0]!]), { maxLength: 30 }), (commands) => {
        let state: OrderState = undefined
        const log: Array<OrderEvent> = []
        for (const command of commands) {
          const decision = decide(command, state)
          if (Either.isLeft(decision)) continue // nothing emitted: the state stays
          for (const event of decision.right) {
            const why = illegalSuccessor(state, event)
            if (why) throw new Error(`illegal: ${why}`)
            state = evolve(state, event)
            log.push(event)
          }
          // already satisfied now: the same command again yields no events
          const again = decide(command, state)
          if (Either.isRight(again) && again.right.length > 0) throw new Error(`${command._tag} not idempotent`)
        }
        if ((state?.version ?? 0) !== log.length) throw new Error("version ≠ number of events")
        // deterministic: folding the log again gives the same state
        const refolded = fold(log)
        if (JSON.stringify(refolded, big) !== JSON.stringify(state, big)) throw new Error("evolve not deterministic")
      }),
      params("pure")
    )
  })
})

const big = (_: string, v: unknown) => (typeof v === "bigint" ? v.toString() : v)
