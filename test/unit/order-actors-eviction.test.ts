/**
 * Eviction of idle order actors (src/actor/OrderActors.ts) on the TestClock, over the in-memory stores. What
 * an actor holds is its cached state: a cached actor appends without reading its stream, an evicted one reads
 * it again — so the stream reads this test counts show whether an actor was kept or dropped.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Context, Deferred, Duration, Effect, Either, Fiber, Layer, TestClock } from "effect"
import { OrderActors } from "../../src/actor/OrderActors.js"
import { MemoryStores } from "../../src/Stores.js"
import type { OrderId } from "../../src/domain/Order.js"
import { EventStore } from "../../src/eventstore/EventStore.js"
import { cmd, fixedOrderId } from "../support/fixtures.js"

const settle = Effect.repeatN(Effect.yieldNow(), 20)

/** The in-memory stores, once; every `process` built over them has actors of its own (as another process would). */
const stores = Layer.build(MemoryStores)

/** One process's order actors over `stores`, its stream reads counted, its appends to `hold` held until released. */
const processOver = (shared: Context.Context<Layer.Layer.Success<typeof MemoryStores>>, config: { idleMs: number; cacheMax: number }) =>
  Effect.gen(function*() {
    const reads = new Map<OrderId, number>()
    const appends = new Map<OrderId, number>()
    let hold: { orderId: OrderId; until: Deferred.Deferred<void> } | undefined
    const CountingStore = Layer.effect(
      EventStore,
      Effect.map(EventStore, (store) =>
        EventStore.of({
          append: (request) =>
            Effect.suspend(() => {
              appends.set(request.streamId, (appends.get(request.streamId) ?? 0) + 1)
              const held = hold?.orderId === request.streamId ? Deferred.await(hold.until) : Effect.void
              return Effect.zipRight(held, store.append(request))
            }),
          readStream: (streamId) =>
            Effect.suspend(() => {
              reads.set(streamId, (reads.get(streamId) ?? 0) + 1)
              return store.readStream(streamId)
            })
        }))
    )
    const env = ConfigProvider.fromMap(new Map([["ACTOR_IDLE_MS", String(config.idleMs)], ["ACTOR_CACHE_MAX", String(config.cacheMax)]]))
    const context = yield* Layer.build(
      OrderActors.Default.pipe(
        Layer.provide(CountingStore),
        Layer.provide(Layer.succeedContext(shared)),
        Layer.provide(Layer.setConfigProvider(env))
      )
    )
    return {
      actors: Context.get(context, OrderActors),
      reads: (id: OrderId) => reads.get(id) ?? 0,
      appends: (id: OrderId) => appends.get(id) ?? 0,
      holdAppendsOf: (orderId: OrderId) => Effect.map(Deferred.make<void>(), (until) => (hold = { orderId, until }, until))
    }
  })

const idle = { idleMs: 30_000, cacheMax: 1000 }

/** A process with one order placed (its actor cached), at the current clock time. */
const withPlacedOrder = Effect.gen(function*() {
  const p = yield* processOver(yield* stores, idle)
  const o = fixedOrderId(1)
  yield* p.actors.execute(cmd.place(o))
  return { p, o }
})

describe("OrderActors eviction", () => {
  it.scoped("an actor idle for less than ACTOR_IDLE_MS keeps its state: the next command reads nothing", () =>
    Effect.gen(function*() {
      const { o, p } = yield* withPlacedOrder
      yield* TestClock.adjust(Duration.seconds(29))
      yield* p.actors.execute(cmd.start(undefined, o))
      assert.strictEqual(p.reads(o), 0)
    }))

  it.scoped("an actor idle for longer than ACTOR_IDLE_MS is evicted: the next command loads the stream", () =>
    Effect.gen(function*() {
      const { o, p } = yield* withPlacedOrder
      yield* TestClock.adjust(Duration.seconds(32)) // the evictor runs every second
      const started = yield* p.actors.execute(cmd.start(undefined, o))
      assert.strictEqual(p.reads(o), 1)
      assert.strictEqual(started.order.status, "PAYMENT_PENDING")
      assert.strictEqual(started.order.version, 2)
    }))

  it.scoped("the idle time counts from the last command, not the first", () =>
    Effect.gen(function*() {
      const { o, p } = yield* withPlacedOrder
      yield* TestClock.adjust(Duration.seconds(20))
      yield* p.actors.execute(cmd.start(undefined, o))
      yield* TestClock.adjust(Duration.seconds(20))
      yield* p.actors.execute(cmd.succeed(undefined, o))
      assert.strictEqual(p.reads(o), 0)
    }))

  it.scoped("a busy actor is not evicted, however long its command takes: commands stay serialized", () =>
    Effect.gen(function*() {
      const { o, p } = yield* withPlacedOrder
      const release = yield* p.holdAppendsOf(o)
      const start = yield* Effect.fork(p.actors.execute(cmd.start(undefined, o)))
      yield* settle
      yield* TestClock.adjust(Duration.seconds(90))
      // queued behind the held command: an evicted actor would hand it a fresh mailbox and run it now
      const succeed = yield* Effect.fork(p.actors.execute(cmd.succeed(undefined, o)))
      yield* settle
      assert.isNull(succeed.unsafePoll(), "the second command waits for the first")
      assert.strictEqual(p.reads(o), 0)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(start)
      const paid = yield* Fiber.join(succeed)
      assert.strictEqual(paid.order.status, "PAID")
      assert.strictEqual(p.reads(o), 0, "both commands ran on the state the actor kept")
    }))

  it.scoped("after eviction the state is reloaded: a change made by another process is seen without a conflict", () =>
    Effect.gen(function*() {
      const shared = yield* stores
      const a = yield* processOver(shared, idle)
      const b = yield* processOver(shared, idle)
      const o = fixedOrderId(1)
      yield* a.actors.execute(cmd.place(o))
      yield* b.actors.execute(cmd.cancel(o)) // another process moves the order
      yield* TestClock.adjust(Duration.seconds(31))
      const refused = yield* Effect.either(a.actors.execute(cmd.start(undefined, o)))
      assert.isTrue(Either.isLeft(refused) && refused.left._tag === "IllegalTransition", JSON.stringify(refused))
      assert.strictEqual(a.reads(o), 1)
      assert.strictEqual(a.appends(o), 1, "only its PlaceOrder: the StartPayment was decided on the reloaded state")
    }))

  it.scoped("beyond ACTOR_CACHE_MAX the longest idle actors are evicted first", () =>
    Effect.gen(function*() {
      const p = yield* processOver(yield* stores, { idleMs: 30_000, cacheMax: 2 })
      const [o1, o2, o3] = [fixedOrderId(1), fixedOrderId(2), fixedOrderId(3)]
      for (const o of [o1, o2, o3]) {
        yield* p.actors.execute(cmd.place(o))
        yield* TestClock.adjust(Duration.millis(300))
      }
      yield* TestClock.adjust(Duration.seconds(1))
      for (const o of [o3, o2, o1]) yield* p.actors.execute(cmd.start(undefined, o))
      assert.deepStrictEqual([o1, o2, o3].map(p.reads), [1, 0, 0])
    }))
})
