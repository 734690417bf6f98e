/**
 * The cross-fiber batcher (src/Batcher.ts) on the TestClock. It has no time window: a lone call is run at once
 * (no clock time passes), and batches form only from calls queued while every worker is busy, up to maxBatch.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Duration, Effect, Either, Exit, Fiber, Layer, Option, TestClock, Tracer } from "effect"
import { makeBatcher } from "../../src/Batcher.js"
import { exportingSpans } from "../../src/observability/Tracing.js"

/** Let every runnable fiber run until it waits (on the queue, a Deferred or the TestClock). */
const settle = Effect.repeatN(Effect.yieldNow(), 20)

/** A batch runner that takes `tookMs` of (test) clock time per batch and records each batch it ran. */
const recorder = (tookMs: number, answer: (item: number) => Either.Either<string, string> = (i) => Either.right(`r${i}`)) => {
  const batches: Array<ReadonlyArray<number>> = []
  const run = (items: ReadonlyArray<number>) =>
    Effect.sync(() => batches.push(items)).pipe(
      Effect.zipRight(Effect.sleep(Duration.millis(tookMs))),
      Effect.as(items.map(answer))
    )
  return { batches, run }
}

describe("Batcher", () => {
  it.scoped("a lone call is run at once, alone: no time window to wait for", () =>
    Effect.gen(function*() {
      const r = recorder(0)
      const call = yield* makeBatcher({ maxBatch: 10, workers: 1, run: r.run })
      // the TestClock never moves: a batcher waiting for a window would hang here
      assert.strictEqual(yield* call(1), "r1")
      assert.deepStrictEqual(r.batches, [[1]])
    }))

  it.scoped("calls queued while the worker is busy go in batches of at most maxBatch, in order", () =>
    Effect.gen(function*() {
      const r = recorder(10)
      const call = yield* makeBatcher({ maxBatch: 3, workers: 1, run: r.run })
      const first = yield* Effect.fork(call(0))
      yield* settle
      assert.deepStrictEqual(r.batches, [[0]])
      const rest = yield* Effect.fork(Effect.forEach([1, 2, 3, 4, 5, 6, 7], (i) => call(i), { concurrency: "unbounded" }))
      yield* settle
      assert.deepStrictEqual(r.batches, [[0]], "the worker is busy with the first batch for 10 ms")
      yield* TestClock.adjust(Duration.millis(10))
      assert.deepStrictEqual(r.batches, [[0], [1, 2, 3]], "then it takes what queued, at most maxBatch")
      yield* TestClock.adjust(Duration.millis(10))
      yield* TestClock.adjust(Duration.millis(10))
      assert.deepStrictEqual(r.batches, [[0], [1, 2, 3], [4, 5, 6], [7]])
      yield* TestClock.adjust(Duration.millis(10))
      assert.strictEqual(yield* Fiber.join(first), "r0")
      assert.deepStrictEqual(yield* Fiber.join(rest), ["r1", "r2", "r3", "r4", "r5", "r6", "r7"])
    }))

  it.scoped("`workers` batches run at once", () =>
    Effect.gen(function*() {
      const r = recorder(10)
      const call = yield* makeBatcher({ maxBatch: 2, workers: 2, run: r.run })
      const all = yield* Effect.fork(Effect.forEach([1, 2, 3, 4, 5, 6], (i) => call(i), { concurrency: "unbounded" }))
      yield* settle
      assert.strictEqual(r.batches.length, 2, "two workers took a batch each before any time passed")
      yield* TestClock.adjust(Duration.millis(10))
      assert.strictEqual(r.batches.length, 4)
      yield* TestClock.adjust(Duration.millis(10))
      assert.deepStrictEqual(r.batches.flat().sort(), [1, 2, 3, 4, 5, 6])
      assert.isTrue(r.batches.every((b) => b.length <= 2))
      assert.strictEqual((yield* Fiber.join(all)).length, 6)
    }))

  it.scoped("each caller gets its own item's answer: a failure goes to its caller only", () =>
    Effect.gen(function*() {
      const r = recorder(10, (i) => i % 2 === 0 ? Either.left(`no ${i}`) : Either.right(`r${i}`))
      const call = yield* makeBatcher({ maxBatch: 10, workers: 1, run: r.run })
      const blocker = yield* Effect.fork(call(99))
      yield* settle
      const batch = yield* Effect.fork(Effect.forEach([1, 2, 3, 4], (i) => Effect.either(call(i)), { concurrency: "unbounded" }))
      yield* TestClock.adjust(Duration.millis(20))
      assert.deepStrictEqual(r.batches, [[99], [1, 2, 3, 4]])
      assert.deepStrictEqual(yield* Fiber.join(batch), [Either.right("r1"), Either.left("no 2"), Either.right("r3"), Either.left("no 4")])
      yield* Fiber.join(blocker)
    }))

  it.scoped("a defect of the batch fails every caller of that batch with it, and no other", () =>
    Effect.gen(function*() {
      const batches: Array<ReadonlyArray<number>> = []
      const call = yield* makeBatcher<number, string, never>({
        maxBatch: 10,
        workers: 1,
        run: (items) =>
          Effect.sync(() => batches.push(items)).pipe(
            Effect.zipRight(Effect.sleep(Duration.millis(10))),
            Effect.zipRight(items.includes(2) ? Effect.dieMessage("statement failed") : Effect.succeed(items.map((i) => Either.right(`r${i}`))))
          )
      })
      const first = yield* Effect.fork(call(1))
      yield* settle
      const second = yield* Effect.fork(Effect.forEach([2, 3], (i) => Effect.exit(call(i)), { concurrency: "unbounded" }))
      yield* TestClock.adjust(Duration.millis(10))
      yield* TestClock.adjust(Duration.millis(10))
      assert.deepStrictEqual(batches, [[1], [2, 3]])
      assert.strictEqual(yield* Fiber.join(first), "r1")
      const exits = yield* Fiber.join(second)
      for (const exit of exits) {
        assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause), "each caller of the batch dies with its defect")
        assert.include(Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "", "statement failed")
      }
      // the worker survives: the next call is answered
      const next = yield* Effect.fork(call(4))
      yield* TestClock.adjust(Duration.millis(10))
      assert.strictEqual(yield* Fiber.join(next), "r4")
    }))

  const late = (i: number, at: number) => ({ at, error: () => `late ${i}` })

  it.scoped("a caller still waiting at its deadline is answered its error, and its item, not yet taken, never runs", () =>
    Effect.gen(function*() {
      const r = recorder(100)
      const call = yield* makeBatcher({ maxBatch: 10, workers: 1, run: r.run })
      const first = yield* Effect.fork(call(0))
      yield* settle
      const waiting = yield* Effect.fork(Effect.either(call(1, late(1, 30))))
      const patient = yield* Effect.fork(call(2, late(2, 1_000)))
      yield* settle
      yield* TestClock.adjust(Duration.millis(30))
      assert.deepStrictEqual(yield* Fiber.join(waiting), Either.left("late 1"), "answered at its deadline, not when the worker is free")
      yield* TestClock.adjust(Duration.millis(70))
      assert.strictEqual(yield* Fiber.join(first), "r0")
      yield* TestClock.adjust(Duration.millis(100))
      assert.strictEqual(yield* Fiber.join(patient), "r2")
      assert.deepStrictEqual(r.batches, [[0], [2]], "the late item was dropped from the queue")
    }))

  it.scoped("a caller whose batch is running is answered at its deadline; the batch completes for the others", () =>
    Effect.gen(function*() {
      const r = recorder(100)
      const call = yield* makeBatcher({ maxBatch: 10, workers: 1, run: r.run })
      const blocker = yield* Effect.fork(call(0))
      yield* settle
      const batch = yield* Effect.fork(Effect.forEach([[1, 150], [2, 1_000]] as const, ([i, at]) => Effect.either(call(i, late(i, at))), { concurrency: "unbounded" }))
      yield* settle
      yield* TestClock.adjust(Duration.millis(100))
      assert.deepStrictEqual(r.batches, [[0], [1, 2]], "both taken by the second batch")
      yield* TestClock.adjust(Duration.millis(50))
      assert.isNull(yield* Fiber.poll(batch).pipe(Effect.map(Option.getOrNull)), "item 2 still waits for its batch")
      yield* TestClock.adjust(Duration.millis(50))
      assert.deepStrictEqual(yield* Fiber.join(batch), [Either.left("late 1"), Either.right("r2")])
      yield* Fiber.join(blocker)
    }))

  it.scoped("a deadline earlier than the one armed is kept: the timer is armed again for it", () =>
    Effect.gen(function*() {
      const r = recorder(1_000)
      const call = yield* makeBatcher({ maxBatch: 10, workers: 1, run: r.run })
      const blocker = yield* Effect.fork(call(0))
      yield* settle
      const later = yield* Effect.fork(Effect.either(call(1, late(1, 500))))
      yield* settle
      const sooner = yield* Effect.fork(Effect.either(call(2, late(2, 20))))
      yield* settle
      yield* TestClock.adjust(Duration.millis(20))
      assert.deepStrictEqual(yield* Fiber.join(sooner), Either.left("late 2"))
      assert.isTrue(Option.isNone(yield* Fiber.poll(later)))
      yield* TestClock.adjust(Duration.millis(480))
      assert.deepStrictEqual(yield* Fiber.join(later), Either.left("late 1"))
      yield* TestClock.adjust(Duration.millis(500))
      yield* Fiber.join(blocker)
      assert.deepStrictEqual(r.batches, [[0]])
    }))

  it.scoped("a call already past its deadline is answered at once and never sent", () =>
    Effect.gen(function*() {
      const r = recorder(10)
      const call = yield* makeBatcher({ maxBatch: 10, workers: 1, run: r.run })
      yield* TestClock.adjust(Duration.millis(50))
      assert.deepStrictEqual(yield* Effect.either(call(1, late(1, 50))), Either.left("late 1"))
      assert.deepStrictEqual(r.batches, [], "nothing was written behind the answer")
    }))

  it.scoped("deadlines after the first are served in passes at most 20 ms apart, not one pass each", () =>
    Effect.gen(function*() {
      const r = recorder(1_000)
      const call = yield* makeBatcher({ maxBatch: 10, workers: 1, run: r.run })
      const blocker = yield* Effect.fork(call(0))
      yield* settle
      const waiting = yield* Effect.forEach([1, 2, 3], (i) => Effect.fork(Effect.either(call(i, late(i, 100 + i)))))
      yield* settle
      yield* TestClock.adjust(Duration.millis(101))
      assert.isTrue(Option.isSome(yield* Fiber.poll(waiting[0]!)), "the first at its deadline")
      yield* TestClock.adjust(Duration.millis(1))
      assert.isTrue(Option.isNone(yield* Fiber.poll(waiting[1]!)), "the next pass is not 1 ms later")
      yield* TestClock.adjust(Duration.millis(19))
      assert.deepStrictEqual(yield* Fiber.join(waiting[1]!), Either.left("late 2"))
      assert.deepStrictEqual(yield* Fiber.join(waiting[2]!), Either.left("late 3"))
      yield* TestClock.adjust(Duration.millis(1_000))
      yield* Fiber.join(blocker)
    }))

  /** Effect's own tracer, every span it makes recorded; `exporting`: the process marked as exporting spans, as
   * with tracing on. */
  const recording = (exporting = true) => {
    const spans: Array<Tracer.Span> = []
    const layer = Layer.unwrapEffect(Effect.map(Effect.tracer, (native) =>
      Layer.merge(
        Layer.setTracer(Tracer.make({
          span: (...args) => {
            const span = native.span(...args)
            spans.push(span)
            return span
          },
          context: native.context
        })),
        exporting ? exportingSpans : Layer.empty
      )))
    return { spans, layer }
  }

  // regression: a batch ran in the batcher's own fiber, so its work (an append's or a read's SQL statement
  // spans) started traces of its own, tied to no caller
  it.scoped("with tracing on, a batch's span continues its first caller's trace and links the others'", () => {
    const tracer = recording()
    return Effect.gen(function*() {
      const call = yield* makeBatcher({ maxBatch: 10, workers: 1, span: "Test.batch", run: recorder(30).run })
      const caller = (i: number) => call(i).pipe(Effect.withSpan(`caller-${i}`))
      // the first call takes the worker (30 ms of test clock); the next two queue behind it and go together
      const first = yield* Effect.fork(caller(0))
      yield* settle
      const rest = yield* Effect.fork(Effect.forEach([1, 2], caller, { concurrency: "unbounded" }))
      yield* settle
      yield* TestClock.adjust(Duration.millis(30))
      yield* settle
      yield* TestClock.adjust(Duration.millis(30))
      yield* Fiber.join(first)
      yield* Fiber.join(rest)
      const named = (name: string) => tracer.spans.find((s) => s.name === name)!
      const batches = tracer.spans.filter((s) => s.name === "Test.batch")
      assert.strictEqual(batches.length, 2)
      const [alone, together] = batches as [Tracer.Span, Tracer.Span]
      const parentId = (s: Tracer.Span) => Option.getOrThrow(s.parent).spanId
      assert.strictEqual(parentId(alone), named("caller-0").spanId)
      assert.strictEqual(alone.traceId, named("caller-0").traceId)
      assert.deepStrictEqual(alone.links, [])
      assert.strictEqual(parentId(together), named("caller-1").spanId)
      assert.deepStrictEqual(together.links.map((l) => l.span.spanId), [named("caller-2").spanId])
      assert.strictEqual(together.attributes.get("batch.size"), 2)
    }).pipe(Effect.provide(tracer.layer))
  })

  it.scoped("with tracing off, a batch makes no span", () => {
    const tracer = recording(false)
    return Effect.gen(function*() {
      const call = yield* makeBatcher({ maxBatch: 10, workers: 1, span: "Test.batch", run: recorder(0).run })
      yield* call(1).pipe(Effect.withSpan("caller"))
      assert.deepStrictEqual(tracer.spans.map((s) => s.name), ["caller"])
    }).pipe(Effect.provide(tracer.layer))
  })
})
