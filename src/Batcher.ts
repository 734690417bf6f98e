/**
 * Cross-fiber batching (group commit): calls made by independent fibers wait in a queue that `workers` fibers
 * drain; a worker takes whatever has queued (at most `maxBatch`) and hands it to `run` at once. Nothing waits
 * for a batch to fill: a lone call goes at once, batches form only while the workers are busy — so under
 * load many calls share one round trip, and at rest there is no added latency.
 * `run` answers each item in order (a success or a failure of its own); a failure or a defect of `run` itself
 * fails every caller of that batch with it, and an interrupted batch interrupts its callers.
 * A caller may give a deadline (`Deadline`): still waiting at its time, it is answered the deadline's error — its
 * item dropped if no batch has taken it yet, else left to its batch, whose answer then goes to nobody. One timer
 * per batcher serves every deadline (armed for the earliest), not one per call: a request deadline on the
 * hottest path without a fiber per request (issue 24).
 * A batch runs in a fiber of the batcher, not of a caller: with tracing on and `span` given, it runs in a span of
 * that name whose parent is its first caller's span, linked to the other callers' — else what it does (its SQL
 * statements' spans) would start traces of their own, tied to no order. With tracing off nothing is captured.
 */
import { Clock, Duration, Effect, type Either, Exit, Fiber, Option, Runtime, type Scope, type Tracer } from "effect"
import { tracingEnabled } from "./observability/Tracing.js"

const maxLinks = 128

export interface BatcherOptions<A, B, E> {
  readonly maxBatch: number
  readonly workers: number
  readonly run: (items: ReadonlyArray<A>) => Effect.Effect<ReadonlyArray<Either.Either<B, E>>, E>
  /** The batch's span name when tracing is on. */
  readonly span?: string
}

/** When a caller stops waiting (ms on the monotonic clock `deadlineIn` reads) and what it is answered then. */
export interface Deadline<E> {
  readonly at: number
  readonly error: () => E
}

/** Milliseconds on the Clock's monotonic time (its nanoseconds: a step of the wall clock moves no deadline). */
const monotonicMs = (clock: Clock.Clock) => Number(clock.unsafeCurrentTimeNanos() / 1_000_000n)

/** A deadline `ms` from now (the process's Clock, as the batchers read it). */
export const deadlineIn = <E>(ms: number, error: () => E): Effect.Effect<Deadline<E>> =>
  Effect.map(Effect.clock, (clock) => ({ at: monotonicMs(clock) + ms, error }))

/** Deadlines after the first are served at most this often: in an outage every call in the queue has one,
 * a millisecond or less apart, and each pass scans the queue. */
const rearmMs = 20

/**
 * The queue is a plain array and a caller waits in one `Effect.async`: a Queue, a Deferred and a worker loop
 * per call cost ~50 fiber steps on every append (issue 24). A batch runs in a fiber of its own; `workers` bounds
 * how many run at once. A caller interrupted while waiting stops waiting; its item, once queued, still runs
 * (unless it has a deadline that passes before a batch takes it)
 * (as with the Queue before: an append is not taken back half-way).
 */
export const makeBatcher = <A, B, E>(
  options: BatcherOptions<A, B, E>
): Effect.Effect<(item: A, deadline?: Deadline<E>) => Effect.Effect<B, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    interface Pending {
      readonly item: A
      /** undefined once the caller stopped waiting */
      resume: ((effect: Effect.Effect<B, E>) => void) | undefined
      /** the caller's span (tracing on, `span` given) */
      readonly parent: Tracer.AnySpan | undefined
      readonly deadline: Deadline<E> | undefined
    }
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const clock = yield* Effect.clock
    const pending: Array<Pending> = []
    const running = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
    /** The batches running, for their callers' deadlines. */
    const taken = new Set<ReadonlyArray<Pending>>()
    let idle = options.workers
    let closed = false
    /** The deadline timer (a sleeping fiber) and the time it is armed for. */
    let timer: Fiber.RuntimeFiber<void> | undefined
    let armedAt = Infinity

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
        taken.add(batch)
        fiber.addObserver(() => {
          running.delete(fiber)
          taken.delete(batch)
          idle++
          kick()
        })
      }
    }
    /** Answer every caller whose deadline passed (an item no batch took is dropped), then arm for the next. */
    const expire = (): void => {
      timer = undefined
      armedAt = Infinity
      const now = monotonicMs(clock)
      let next = Infinity
      const expired: Array<Pending> = []
      const due = (p: Pending) => {
        if (p.deadline === undefined) return false
        if (p.deadline.at <= now) return true
        if (p.resume !== undefined) next = Math.min(next, p.deadline.at)
        return false
      }
      let kept = 0
      for (const p of pending) {
        if (due(p)) expired.push(p)
        else pending[kept++] = p
      }
      pending.length = kept
      for (const batch of taken) {
        for (const p of batch) if (p.resume !== undefined && due(p)) expired.push(p)
      }
      if (next < Infinity) arm(Math.max(next, now + rearmMs))
      for (const p of expired) answer(p, Effect.fail(p.deadline!.error()))
    }
    const arm = (at: number): void => {
      if (closed || at >= armedAt) return
      if (timer !== undefined) timer.unsafeInterruptAsFork(timer.id())
      armedAt = at
      timer = runFork(Effect.zipRight(Effect.sleep(Duration.millis(Math.max(0, at - monotonicMs(clock)))), Effect.sync(expire)))
    }
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        // what never ran is answered as interrupted; a batch running is interrupted, which answers its callers
        for (const p of pending.splice(0)) answer(p, Effect.interrupt)
        const fibers = timer === undefined ? [...running] : [...running, timer]
        return Effect.forEach(fibers, (fiber) => fiber.interruptAsFork(fiber.id()), { discard: true })
      }))
    const enqueue = (item: A, parent: Tracer.AnySpan | undefined, deadline: Deadline<E> | undefined) =>
      Effect.async<B, E>((resume) => {
        if (closed) return resume(Effect.interrupt)
        // already late: answered at once, never sent (else it could be written behind the answer)
        if (deadline !== undefined && deadline.at <= monotonicMs(clock)) return resume(Effect.fail(deadline.error()))
        const p: Pending = { item, resume, parent, deadline }
        pending.push(p)
        kick()
        // still waiting (not answered at once by a batch that completed synchronously): its deadline armed
        if (deadline !== undefined && p.resume !== undefined) arm(deadline.at)
        return Effect.sync(() => {
          p.resume = undefined
        })
      })
    return (item: A, deadline?: Deadline<E>) =>
      options.span !== undefined && tracingEnabled()
        ? Effect.flatMap(Effect.option(Effect.currentParentSpan), (parent) => enqueue(item, Option.getOrUndefined(parent), deadline))
        : enqueue(item, undefined, deadline)
  })
