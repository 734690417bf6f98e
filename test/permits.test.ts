/**
 * src/Permits.ts — the fair semaphore of the payment gateway's connections and the order actors' mailboxes:
 * at most n holders, permits granted in arrival order, one waiter woken per release, and no permit lost or
 * created by interruption (of a waiter, of a holder, or of a waiter in the instant it is handed a permit).
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import fc from "fast-check"
import { makePermits } from "../src/Permits.js"

describe("Permits", () => {
  it.effect("grants in arrival order, at most n at once", () =>
    Effect.gen(function*() {
      const permits = makePermits(2)
      const gate = yield* Deferred.make<void>()
      const order: Array<number> = []
      let holding = 0
      let most = 0
      const task = (i: number) =>
        permits.withPermit(Effect.gen(function*() {
          order.push(i)
          holding++
          most = Math.max(most, holding)
          yield* Deferred.await(gate)
          yield* Effect.yieldNow()
          holding--
        }))
      const fibers = []
      for (let i = 0; i < 10; i++) {
        fibers.push(yield* Effect.fork(task(i)))
        yield* Effect.yieldNow()
      }
      expect(permits.waiting()).toBe(8)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.joinAll(fibers)
      expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
      expect(most).toBe(2)
      expect(permits.free()).toBe(2)
    }))

  it.effect("an interrupted waiter takes nothing; an interrupted holder gives its permit back", () =>
    Effect.gen(function*() {
      const permits = makePermits(1)
      const holder = yield* Effect.fork(permits.withPermit(Effect.never))
      yield* Effect.yieldNow()
      const waiter = yield* Effect.fork(permits.withPermit(Effect.void))
      yield* Effect.yieldNow()
      expect(permits.waiting()).toBe(1)
      yield* Fiber.interrupt(waiter)
      expect(permits.waiting()).toBe(0)
      expect(permits.free()).toBe(0)
      yield* Fiber.interrupt(holder)
      expect(permits.free()).toBe(1)
    }))

  it("random holders, waiters and interruptions: never more than n at once, every permit back at the end", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }),
        fc.array(fc.record({ hold: fc.integer({ min: 0, max: 5 }), interruptAfter: fc.option(fc.integer({ min: 0, max: 8 })) }), {
          minLength: 1,
          maxLength: 30
        }),
        async (n, tasks) => {
          const permits = makePermits(n)
          let holding = 0
          let most = 0
          await Effect.runPromise(Effect.gen(function*() {
            const fibers = yield* Effect.forEach(tasks, (t) =>
              Effect.fork(permits.withPermit(Effect.gen(function*() {
                holding++
                most = Math.max(most, holding)
                yield* Effect.forEach(Array.from({ length: t.hold }), () => Effect.yieldNow(), { discard: true })
              }).pipe(Effect.ensuring(Effect.sync(() => holding--))))))
            // interrupt some fibers at random moments: waiting, holding, or just handed a permit
            yield* Effect.forEach(tasks, (t, i) =>
              t.interruptAfter === null
                ? Effect.void
                : Effect.fork(Effect.forEach(Array.from({ length: t.interruptAfter }), () => Effect.yieldNow(), { discard: true }).pipe(
                  Effect.zipRight(Fiber.interrupt(fibers[i]!))
                )), { discard: true })
            yield* Effect.forEach(fibers, (f) => Fiber.await(f), { discard: true })
          }))
          expect(most).toBeLessThanOrEqual(n)
          expect(permits.free()).toBe(n)
          expect(permits.waiting()).toBe(0)
        }
      ),
      { numRuns: 300 }
    )
  })
})
