/**
 * P12 — committed offsets (docs/ARCHITECTURE.md "Payment worker", invariants 1 and 9): messages of one
 * partition finish in any order (different keys run concurrently); the offset the keyed consumer commits is
 * never past an unfinished message, and it reaches the end once everything finished. Random interleavings of
 * takes (with gaps, as compaction and transaction markers leave them, and with redeliveries of offsets already
 * taken) and of completions, checked after every step against a plain model.
 */
import { describe, it } from "@effect/vitest"
import { OffsetTracker } from "../src/kafka/OffsetTracker.js"
import { fc, params } from "./support.js"

type Step = { readonly kind: "take"; readonly gap: number; readonly redeliver: number } | { readonly kind: "finish"; readonly pick: number }

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant("take" as const), gap: fc.integer({ min: 1, max: 3 }), redeliver: fc.integer({ min: 0, max: 4 }) }),
  fc.record({ kind: fc.constant("finish" as const), pick: fc.nat() })
)

describe("P12 offsets", () => {
  it("random interleavings of completions never commit past an unfinished offset", async () => {
    await fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 200 }), (steps) => {
        const tracker = new OffsetTracker()
        const unfinished = new Set<bigint>()
        let next = 0n
        let highest = -1n
        for (const step of steps) {
          if (step.kind === "take") {
            // a redelivery of something taken before is refused; a new offset is taken
            if (step.redeliver > 0 && highest >= 0n) {
              const again = highest - BigInt(step.redeliver % Number(highest + 1n))
              if (tracker.add(again)) throw new Error(`offset ${again} taken twice`)
            }
            next += BigInt(step.gap - 1)
            if (!tracker.add(next)) throw new Error(`new offset ${next} refused`)
            unfinished.add(next)
            highest = next
            next += 1n
          } else if (unfinished.size > 0) {
            const list = [...unfinished]
            const done = list[step.pick % list.length]!
            unfinished.delete(done)
            tracker.finish(done)
          }
          const committable = tracker.committable()
          const lowest = unfinished.size === 0 ? undefined : [...unfinished].reduce((a, b) => (a < b ? a : b))
          const expected = highest < 0n ? undefined : lowest ?? highest + 1n
          if (committable !== expected) {
            throw new Error(`committable ${committable} but the first unfinished is ${lowest} (highest ${highest})`)
          }
          if (tracker.inFlight !== unfinished.size) throw new Error(`in flight ${tracker.inFlight} ≠ ${unfinished.size}`)
        }
      }),
      params("memory")
    )
  })
})
