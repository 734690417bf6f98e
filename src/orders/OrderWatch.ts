/**
 * `GET /orders/:id/watch`: an order's events as server-sent events until the order is terminal. One hub per
 * process holds the watchers (at most WATCH_MAX_CONNECTIONS; 503 beyond). It listens to the commit
 * notifications the relay gets (PostgreSQL NOTIFY on the appends channel, sent by every append; listened to from
 * the first watcher on): on each
 * notification, coalesced, ONE query re-reads the new events of every watched stream — no query per client.
 * The same query runs every WATCH_POLL_MS while anyone watches, as the safety net (a LISTEN connection that
 * was lost is not re-established by @effect/sql-pg: docs/DECISIONS.md "Known limitations and open notes"). It never shares the relay's in-process
 * latch: closing it would delay the relay.
 *
 * Frames: `id:` = stream version (a reconnecting client sends it back as `Last-Event-ID` and resumes after it),
 * `event:` = event type, `data:` = `{"event": EventView, "order": OrderView}` (the order as of that event).
 * Heartbeat comments every WATCH_HEARTBEAT_MS (one timer for all streams) keep proxies from closing an idle stream.
 */
import { PgClient } from "@effect/sql-pg"
import { Config, Context, Duration, Effect, Layer, Metric, Option, Queue, Schedule, Stream } from "effect"
import { isPaid, type OrderId, OrderNotFound, type OrderState } from "../domain/Order.js"
import { evolve } from "../domain/OrderDecider.js"
import { EventStore, type RecordedEvent } from "../eventstore/EventStore.js"
import { APPENDS_CHANNEL, lazyListen } from "../database/Notifications.js"
import { makeStreamTails } from "../eventstore/StreamTails.js"
import { TooManyWatchers } from "./Api.js"
import { toEventView, toView } from "./Views.js"
import type { StoreError } from "../Infrastructure.js"

/** Streams per process (503 beyond), heartbeat period, the one re-read of all watched streams. */
export const WatchConfig = Config.all({
  maxConnections: Config.integer("WATCH_MAX_CONNECTIONS").pipe(Config.withDefault(1000)),
  heartbeatMs: Config.integer("WATCH_HEARTBEAT_MS").pipe(Config.withDefault(15_000)),
  pollMs: Config.integer("WATCH_POLL_MS").pipe(Config.withDefault(500))
})
export type WatchSettings = Config.Config.Success<typeof WatchConfig>


export const watchConnections = Metric.gauge("order_watch_connections", {
  description: "open GET /orders/:id/watch streams in this process"
})

export const watchRejected = Metric.counter("order_watch_rejected_total", {
  description: "watch requests refused because the process serves WATCH_MAX_CONNECTIONS streams",
  incremental: true
})

interface Watcher {
  readonly orderId: OrderId
  lastVersion: number
  state: OrderState
  /** frames; `null` ends the stream */
  readonly queue: Queue.Queue<string | null>
}

/** Settled, and no refund pending: a PAID order with a refund under way is watched until the refund settles. */
const terminal = (state: OrderState) =>
  state !== undefined && (state.status === "FAILED" || state.status === "CANCELLED" ||
    (isPaid(state.status) && state.refunds.every((r) => r.status !== "pending")))

const frame = (r: RecordedEvent, state: OrderState) =>
  `id: ${r.version}\nevent: ${r.event._tag}\ndata: ${JSON.stringify({ event: toEventView(r), order: state && toView(state) })}\n\n`

export class OrderWatchers extends Context.Tag("OrderWatchers")<OrderWatchers, {
  /** The order's events after version `after` (0: all), then live ones until it is terminal, as SSE bytes. */
  readonly watch: (orderId: OrderId, after: number) => Effect.Effect<Stream.Stream<Uint8Array>, OrderNotFound | TooManyWatchers | StoreError>
}>() {}

const make = (settings: WatchSettings) =>
  Effect.gen(function*() {
    const store = yield* EventStore
    /** New events of every watched stream: one query on PostgreSQL; stream by stream in memory. */
    const readNew = yield* makeStreamTails
    const pg = yield* Effect.serviceOption(PgClient.PgClient)
    const watched = new Map<OrderId, Set<Watcher>>()
    let connections = 0
    const wakes = yield* Queue.sliding<void>(1)

    const unregister = (w: Watcher) => {
      const set = watched.get(w.orderId)
      if (set === undefined) return
      set.delete(w)
      if (set.size === 0) watched.delete(w.orderId)
    }

    /** Apply a stream's events in version order; only those after the watcher's version; frames after `after`. */
    const deliver = (w: Watcher, events: ReadonlyArray<RecordedEvent>, after = 0) => {
      for (const r of events) {
        if (r.version !== w.lastVersion + 1) continue
        w.state = evolve(w.state, r.event)
        w.lastVersion = r.version
        if (r.version > after) Queue.unsafeOffer(w.queue, frame(r, w.state))
      }
      if (terminal(w.state)) {
        Queue.unsafeOffer(w.queue, null)
        unregister(w)
      }
    }

    const refresh = Effect.gen(function*() {
      if (watched.size === 0) return
      const from = [...watched].map(([id, set]) => [id, Math.min(...[...set].map((w) => w.lastVersion))] as const)
      const events = yield* readNew(from)
      const byStream = new Map<string, Array<RecordedEvent>>()
      for (const e of events) {
        const list = byStream.get(e.streamId)
        if (list) list.push(e)
        else byStream.set(e.streamId, [e])
      }
      for (const [id, list] of byStream) {
        for (const w of [...(watched.get(id as OrderId) ?? [])]) deliver(w, list)
      }
    }).pipe(
      Effect.catchAllCause((cause) =>
        Effect.logWarning("watch refresh failed; retrying on the next notification or poll").pipe(
          Effect.annotateLogs({ type: "PROCESSING_ERROR", job: "order-watch", cause: String(cause) })
        )
      )
    )

    yield* Queue.take(wakes).pipe(
      Effect.timeoutOption(Duration.millis(settings.pollMs)),
      Effect.zipRight(refresh),
      Effect.forever,
      Effect.forkScoped
    )
    // the LISTEN from the first watcher on (src/database/Notifications.ts): an api nobody watches takes no
    // notification; what commits before it is up, the re-read after registering and the poll catch
    const listen = Option.isSome(pg)
      ? yield* lazyListen("unlisten (order watch)", APPENDS_CHANNEL, Queue.offer(wakes, undefined).pipe(Effect.asVoid)).pipe(
        Effect.provideService(PgClient.PgClient, pg.value)
      )
      : Effect.void
    // shutting down: every open stream ends, so the server can drain
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const set of watched.values()) for (const w of set) Queue.unsafeOffer(w.queue, null)
        watched.clear()
      })
    )

    // one timer for every open stream, not a merged heartbeat stream per client (its fibers and queue cost
    // memory per watcher: bench `watchers`)
    yield* Effect.sync(() => {
      for (const set of watched.values()) for (const w of set) Queue.unsafeOffer(w.queue, ": heartbeat\n\n")
    }).pipe(Effect.repeat(Schedule.spaced(Duration.millis(settings.heartbeatMs))), Effect.forkScoped)

    const encoder = new TextEncoder()

    return OrderWatchers.of({
      watch: (orderId, after) =>
        Effect.gen(function*() {
          if (connections >= settings.maxConnections) {
            yield* Metric.increment(watchRejected)
            return yield* new TooManyWatchers({
              message: `this process already serves ${settings.maxConnections} watch streams; retry later or poll GET /orders/{orderId}`
            })
          }
          const recorded = yield* store.readStream(orderId)
          if (recorded.length === 0) return yield* new OrderNotFound({ orderId, message: `order ${orderId} not found` })
          connections++
          yield* Metric.set(watchConnections, connections)
          const w: Watcher = { orderId, lastVersion: 0, state: undefined, queue: yield* Queue.unbounded<string | null>() }
          Queue.unsafeOffer(w.queue, "retry: 2000\n\n")
          deliver(w, recorded, after)
          if (!terminal(w.state)) {
            const set = watched.get(orderId)
            if (set) set.add(w)
            else watched.set(orderId, new Set([w]))
            // anything committed between the read and now: the next refresh sees it
            yield* listen
            yield* Queue.offer(wakes, undefined)
          }
          const done = Effect.suspend(() => {
            unregister(w)
            connections--
            return Effect.zipRight(Metric.set(watchConnections, connections), Queue.shutdown(w.queue))
          })
          return Stream.fromQueue(w.queue).pipe(
            Stream.takeWhile((f): f is string => f !== null),
            Stream.map((text) => encoder.encode(text)),
            Stream.ensuring(done)
          )
        })
    })
  })

export const OrderWatchersLive = Layer.scoped(OrderWatchers, Effect.flatMap(Effect.orDie(WatchConfig), make))
