/**
 * Cross-fiber batching (group commit): calls made by independent fibers wait in a queue that `workers` fibers
 * drain; a worker takes whatever has queued (at most `maxBatch`) and hands it to `run` at once. Nothing waits
 * for a batch to fill: a lone call goes at once, batches form only while the workers are busy — so under
 * load many calls share one round trip, and at rest there is no added latency.
 * `run` answers each item in order (a success or a failure of its own); a defect in `run` fails every caller
 * of that batch with it, and an interrupted batch interrupts its callers.
 */
import { Chunk, Deferred, Effect, type Either, Queue, type Scope } from "effect"

export interface BatcherOptions<A, B, E> {
  readonly maxBatch: number
  readonly workers: number
  readonly run: (items: ReadonlyArray<A>) => Effect.Effect<ReadonlyArray<Either.Either<B, E>>>
}

export const makeBatcher = <A, B, E>(options: BatcherOptions<A, B, E>): Effect.Effect<(item: A) => Effect.Effect<B, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    interface Pending {
      readonly item: A
      readonly done: Deferred.Deferred<B, E>
    }
    const queue = yield* Queue.unbounded<Pending>()
    yield* Effect.addFinalizer(() => Queue.shutdown(queue))
    const runBatch = (batch: ReadonlyArray<Pending>) =>
      Effect.exit(options.run(batch.map((p) => p.item))).pipe(
        Effect.flatMap((exit) =>
          Effect.forEach(batch, (p, i) =>
            exit._tag === "Failure" ? Deferred.failCause(p.done, exit.cause) : Deferred.complete(p.done, exit.value[i]!), {
            discard: true
          })
        ),
        Effect.onInterrupt(() => Effect.forEach(batch, (p) => Deferred.interrupt(p.done), { discard: true }))
      )
    const worker = Queue.takeBetween(queue, 1, options.maxBatch).pipe(
      Effect.flatMap((taken) => runBatch(Chunk.toReadonlyArray(taken))),
      Effect.forever
    )
    for (let i = 0; i < options.workers; i++) yield* Effect.forkScoped(worker)
    return (item: A) =>
      Effect.flatMap(Deferred.make<B, E>(), (done) => Queue.offer(queue, { item, done }).pipe(Effect.zipRight(Deferred.await(done))))
  })
