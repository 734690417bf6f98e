/**
 * Order actors (docs/ARCHITECTURE.md "The order actor"): the one way to change an order. Commands for one
 * order id run one at a time through that order's mailbox (a 1-permit semaphore); different orders run
 * concurrently. An actor caches its order's state; one evictor fiber drops actors idle for longer than
 * ACTOR_IDLE_MS (and the oldest idle ones beyond ACTOR_CACHE_MAX), so memory stays bounded. (Not an RcMap: its
 * per-entry idle timer is a fiber forked from the first caller, which kept that caller's HTTP request alive
 * for the whole idle time.)
 *
 * Across processes the expected-version check of EventStore.append is the guard: on ConcurrencyConflict the
 * actor reloads the stream and decides again, a bounded number of times. A cached state is only trusted for
 * an append (which the version check guards); a rejection or a no-op decided on a cached or assumed state is
 * confirmed against a fresh read first, since another process may have moved the order. An append answered
 * "duplicate" (its derived event ids stored already, by an earlier attempt at other times) caches the log's
 * state, read afresh, never this attempt's decision.
 */
import { Clock, Config, Context, Duration, Effect, Either, Schedule } from "effect"
import { type Order, type OrderCommand, type OrderEvent, type OrderId, type OrderState, type Rejection, versionOf } from "../domain/Order.js"
import { decide, fold } from "../domain/OrderDecider.js"
import {
  type AppendParticipants,
  type ConcurrencyConflict,
  type EventMetadata,
  EventStore,
  OrderAfterAppend
} from "../eventstore/EventStore.js"
import type { Deadline } from "../Batcher.js"
import type { StoreError, StoreUnavailable } from "../Infrastructure.js"
import { OutboxSignal } from "../outbox/OutboxSignal.js"
import { logInfoWithFields } from "../observability/Logging.js"
import { currentTraceContext, traced } from "../observability/Tracing.js"
import { makePermits, type Permits } from "../Permits.js"

export interface ExecuteOptions {
  readonly metadata?: EventMetadata | undefined
  /** What the caller has written in the append's transaction (a key's completion, an inbox row), passed on
   * to the store as it is; nothing when the command appends nothing. */
  readonly participants?: AppendParticipants | undefined
  /** The caller's request deadline, given to the append (EventStore `AppendRequest.deadline`). */
  readonly deadline?: Deadline<StoreUnavailable> | undefined
}

export interface Executed {
  /** The order after the command (for a no-op command, as it was). */
  readonly order: Order
  /** The events the command appended: empty when it was already satisfied. */
  readonly events: ReadonlyArray<OrderEvent>
}

interface Actor {
  readonly mailbox: Permits
  /** `undefined` = not loaded; `{ state }` = the state after the last append or read by this process. */
  cached: { readonly state: OrderState } | undefined
  /** Set by a conflict: the next attempt reads the stream even for a PlaceOrder. */
  reload: boolean
  /** Commands holding or waiting for the mailbox: an actor in use is never evicted. */
  users: number
  idleSince: number
}

export const ActorConfig = Config.all({
  idleMs: Config.integer("ACTOR_IDLE_MS").pipe(Config.withDefault(30_000)),
  cacheMax: Config.integer("ACTOR_CACHE_MAX").pipe(Config.withDefault(20_000))
})

/** What the inline projections write with an append: the order after it, and the caller's participants. */
const appendInputs = (next: Order, participants: AppendParticipants | undefined): Context.Context<never> => {
  const order = Context.make(OrderAfterAppend, next) as Context.Context<never>
  return participants === undefined ? order : Context.merge(order, participants(next))
}

/** Attempts after a conflict: one at once (it reloads the stream), then up to this many with backoff (9 in all). */
const conflictRetries = 7

export class OrderActors extends Effect.Service<OrderActors>()("OrderActors", {
  scoped: Effect.gen(function*() {
    const store = yield* EventStore
    const outbox = yield* OutboxSignal
    const config = yield* Effect.orDie(ActorConfig)
    const actors = new Map<OrderId, Actor>()

    const acquire = (orderId: OrderId) =>
      Effect.sync(() => {
        let actor = actors.get(orderId)
        if (actor === undefined) {
          actor = { mailbox: makePermits(1), cached: undefined, reload: false, users: 0, idleSince: 0 }
          actors.set(orderId, actor)
        }
        actor.users++
        return actor
      })
    const release = (actor: Actor) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        actor.users--
        actor.idleSince = now
      })
    const evict = Effect.map(Clock.currentTimeMillis, (now) => {
      const idle: Array<[OrderId, Actor]> = []
      for (const entry of actors) {
        if (entry[1].users > 0) continue
        if (now - entry[1].idleSince > config.idleMs) actors.delete(entry[0])
        else idle.push(entry)
      }
      if (actors.size > config.cacheMax) {
        idle.sort((a, b) => a[1].idleSince - b[1].idleSince)
        for (const [id] of idle.slice(0, actors.size - config.cacheMax)) actors.delete(id)
      }
    })
    yield* Effect.forkScoped(Effect.repeat(evict, Schedule.spaced(Duration.seconds(1))))

    const load = (orderId: OrderId) =>
      Effect.map(store.readStream(orderId), (recorded) => fold(recorded.map((r) => r.event)))

    const attempt = (actor: Actor, command: OrderCommand, options: ExecuteOptions) =>
      Effect.gen(function*() {
        // A new order needs no read: PlaceOrder on an unknown id assumes an empty stream, the append checks it.
        const trusted = actor.cached === undefined && (command._tag !== "PlaceOrder" || actor.reload)
        let state = actor.cached !== undefined ? actor.cached.state : trusted ? yield* load(command.orderId) : undefined
        actor.reload = false
        let decision = decide(command, state)
        // states no command can leave (a PAID order can still be refunded, from another process)
        const settled = (s: OrderState) => s?.status === "FAILED" || s?.status === "CANCELLED" || s?.status === "REFUNDED"
        if (!trusted && !settled(state) && (Either.isLeft(decision) || decision.right.length === 0)) {
          state = yield* load(command.orderId)
          decision = decide(command, state)
        }
        if (Either.isLeft(decision)) {
          actor.cached = { state }
          return yield* Effect.fail(decision.left)
        }
        const events = decision.right
        if (events.length === 0) {
          actor.cached = { state }
          return { order: state!, events }
        }
        let next = fold(events, state)!
        const appended = yield* store.append({
          streamId: command.orderId,
          expectedVersion: versionOf(state),
          events,
          metadata: { ...options.metadata, ...(yield* currentTraceContext) },
          inputs: appendInputs(next, options.participants),
          deadline: options.deadline
        }).pipe(traced("EventStore.append", { attributes: { "order.id": command.orderId, "event.types": events.map((e) => e._tag).join(",") } }), Effect.tapError(() =>
          Effect.sync(() => {
            actor.cached = undefined
            actor.reload = true
          })
        ))
        // a duplicate: an earlier attempt stored these event ids (derived ids: a retried request) — with ITS times,
        // maybe after other events. What this attempt decided is not what the log holds: the log's state is.
        if (appended.duplicate) next = (yield* load(command.orderId))!
        actor.cached = { state: next }
        yield* outbox.wake
        // a line on every state change: its fields carried by the message, no annotating (src/observability/Logging.ts)
        yield* logInfoWithFields("state changed", {
          type: "STATE_CHANGE",
          orderId: command.orderId,
          from: state?.status ?? null,
          to: next.status,
          version: next.version,
          eventType: events.map((e) => e._tag).join(",")
        })
        return { order: next, events } satisfies Executed
      })

    const retryConflicts = Schedule.exponential(Duration.millis(2)).pipe(
      Schedule.jittered,
      Schedule.intersect(Schedule.recurs(conflictRetries)),
      Schedule.whileInput((e: Rejection | ConcurrencyConflict | StoreError) => e._tag === "ConcurrencyConflict")
    )

    const execute = (command: OrderCommand, options: ExecuteOptions = {}) =>
      Effect.acquireUseRelease(
        acquire(command.orderId),
        (actor) =>
          actor.mailbox.withPermit(
            // the retry schedule is only set up once a conflict happened: the common path does not pay for it
            attempt(actor, command, options).pipe(
              Effect.catchTag("ConcurrencyConflict", () => Effect.retry(attempt(actor, command, options), retryConflicts))
            )
          ),
        release
      ).pipe(traced(`OrderActors.${command._tag}`, { attributes: { "order.id": command.orderId } }))

    return {
      /** Run a command on its order: the events it appended and the resulting order, or why it was rejected. */
      execute: execute as (
        command: OrderCommand,
        options?: ExecuteOptions
      ) => Effect.Effect<Executed, Rejection | ConcurrencyConflict | StoreError>,
      /** The order as its stream folds (not the projection), for callers that need the log's own view. */
      load
    } as const
  })
}) {}
