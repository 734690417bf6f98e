/**
 * Cross-fiber batching (group commit): calls made by independent fibers wait in a queue that `workers` fibers
 * drain; a worker takes whatever has queued (at most `maxBatch`) and hands it to `run` at once. Nothing waits
 * for a batch to fill: a lone call goes at once, batches form only while the workers are busy — so under
 * load many calls share one round trip, and at rest there is no added latency.
 * `run` answers each item in order (a success or a failure of its own); a failure or a defect of `run` itself
 * fails every caller of that batch with it, and an interrupted batch interrupts its callers.
 * A batch runs in a fiber of the batcher, not of a caller: with tracing on and `span` given, it runs in a span of
 * that name whose parent is its first caller's span, linked to the other callers' — else what it does (its SQL
 * statements' spans) would start traces of their own, tied to no order. With tracing off nothing is captured.
 */
import { Effect, type Either, Exit, type Fiber, Option, Runtime, type Scope, type Tracer } from "effect"
import { tracingEnabled } from "./observability/Tracing.js"

const maxLinks = 128

export interface BatcherOptions<A, B, E> {
  readonly maxBatch: number
  readonly workers: number
  readonly run: (items: ReadonlyArray<A>) => Effect.Effect<ReadonlyArray<Either.Either<B, E>>, E>
  /** The batch's span name when tracing is on. */
  readonly span?: string
}

/**
 * The queue is a plain array and a caller waits in one `Effect.async`: a Queue, a Deferred and a worker loop
 * per call cost ~50 fiber steps on every append (issue 24). A batch runs in a fiber of its own; `workers` bounds
 * how many run at once. A caller interrupted while waiting stops waiting; its item, once queued, still runs
 * (as with the Queue before: an append is not taken back half-way).
 */
export const makeBatcher = <A, B, E>(options: BatcherOptions<A, B, E>): Effect.Effect<(item: A) => Effect.Effect<B, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    interface Pending {
      readonly item: A
      /** undefined once the caller stopped waiting */
      resume: ((effect: Effect.Effect<B, E>) => void) | undefined
      /** the caller's span (tracing on, `span` given) */
      readonly parent: Tracer.AnySpan | undefined
    }
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const pending: Array<Pending> = []
    const running = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
    let idle = options.workers
    let closed = false

    const answer = (p: Pending, effect: Effect.Effect<B, E>) => {
      const resume = p.resume
      p.resume = undefined
      resume?.(effect)
    }
    const complete = (batch: ReadonlyArray<Pending>, exit: Exit.Exit<ReadonlyArray<Either.Either<B, E>>, E>) =>
      Effect.sync(() => {
        for (let i = 0; i < batch.length; i++) {
          const p = batch[i]!
          if (Exit.isFailure(exit)) answer(p, Effect.failCause(exit.cause))
          else {
            const result = exit.value[i]!
            answer(p, result._tag === "Right" ? Effect.succeed(result.right) : Effect.fail(result.left))
          }
        }
      })
    /** The batch in a span continuing its first sampled caller's trace (else its first traced one's: an
     * unsampled parent would drop the batch's spans for every caller), linked to the others' — at most
     * `maxLinks` (OpenTelemetry's default span limit) (tracing on). */
    const inSpan = (batch: ReadonlyArray<Pending>, run: Effect.Effect<ReadonlyArray<Either.Either<B, E>>, E>) => {
      const parents = batch.flatMap((p) => (p.parent === undefined ? [] : [p.parent]))
      if (options.span === undefined || parents.length === 0) return run
      const parent = parents.find((span) => span.sampled) ?? parents[0]!
      return Effect.withSpan(run, options.span, {
        parent,
        links: parents.filter((span) => span !== parent).slice(0, maxLinks)
          .map((span): Tracer.SpanLink => ({ _tag: "SpanLink", span, attributes: {} })),
        attributes: { "batch.size": batch.length },
        captureStackTrace: false
      })
    }
    const kick = (): void => {
      while (!closed && idle > 0 && pending.length > 0) {
        idle--
        const batch = pending.splice(0, options.maxBatch)
        const run = inSpan(batch, Effect.suspend(() => options.run(batch.map((p) => p.item))))
        const fiber = runFork(Effect.onExit(run, (exit) => complete(batch, exit)))
        running.add(fiber)
        fiber.addObserver(() => {
          running.delete(fiber)
          idle++
          kick()
        })
      }
    }
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        // what never ran is answered as interrupted; a batch running is interrupted, which answers its callers
        for (const p of pending.splice(0)) answer(p, Effect.interrupt)
        return Effect.forEach([...running], (fiber) => fiber.interruptAsFork(fiber.id()), { discard: true })
      }))
    const enqueue = (item: A, parent: Tracer.AnySpan | undefined) =>
      Effect.async<B, E>((resume) => {
        if (closed) return resume(Effect.interrupt)
        const p: Pending = { item, resume, parent }
        pending.push(p)
        kick()
        return Effect.sync(() => {
          p.resume = undefined
        })
      })
    return (item: A) =>
      options.span !== undefined && tracingEnabled()
        ? Effect.flatMap(Effect.option(Effect.currentParentSpan), (parent) => enqueue(item, Option.getOrUndefined(parent)))
        : enqueue(item, undefined)
  })
