/**
 * Rebuild and verify the `orders` projection from the event log (docs/ARCHITECTURE.md "Projections"), without
 * stopping writes.
 *
 * rebuild:
 *  1. `orders_rebuild` is created fresh (a leftover of a killed run is dropped first: rerunning is always safe);
 *  2. bulk pass: in one REPEATABLE READ snapshot, the log is read stream by stream (keyset pages on
 *     (stream_id, version)), folded with the same `evolve` as the live path, and the rows inserted;
 *  3. swap: one short transaction locks `orders` (appends wait only here), re-folds every stream with an
 *     event not visible to the bulk snapshot (transaction id ≥ its xmin: covers late commits too), and
 *     renames the tables. The old table is dropped.
 * verify: folds the whole log and compares it with the live table, row for row, both ways.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Fiber } from "effect"
import type { Order, OrderState } from "../domain/Order.js"
import { evolve, fold } from "../domain/OrderDecider.js"
import { decodeEvent } from "../eventstore/EventCodec.js"
import { orderFromRow, type OrderRow, selectColumns, toParams, writeOrders } from "./OrdersTable.js"
import { orStoreError } from "../Infrastructure.js"

export interface Progress {
  readonly done: number
  readonly total: number
  readonly eventsPerSecond: number
  readonly etaSeconds: number
}

export interface RebuildResult {
  readonly events: number
  readonly orders: number
  readonly caughtUp: number
  readonly seconds: number
}

interface EventPage {
  readonly stream_id: string
  readonly version: number
  readonly type: string
  readonly schema_version: number
  readonly data: unknown
}

const pageSize = 20_000

/**
 * Read the log stream by stream in keyset pages and hand over each completely folded order.
 * `onOrders` receives batches; `onPage` the number of events read so far.
 */
const foldLog = <E, R>(
  sql: SqlClient.SqlClient,
  onOrders: (orders: ReadonlyArray<Order>) => Effect.Effect<void, E, R>,
  onPage: (events: number) => Effect.Effect<void>
) =>
  Effect.gen(function*() {
    const fetchPage = (after: readonly [string, number]) =>
      sql<EventPage>`
        SELECT stream_id, version, type, schema_version, data FROM events
        WHERE (stream_id, version) > (${after[0]}::uuid, ${after[1]})
        ORDER BY stream_id, version LIMIT ${pageSize}`
    let events = 0
    let current: { id: string; state: OrderState } | undefined
    // the next page is asked for before this one is folded: PostgreSQL reads while Node folds
    let next = yield* Effect.fork(fetchPage(["00000000-0000-0000-0000-000000000000", 0]))
    for (;;) {
      const page = yield* Fiber.join(next)
      if (page.length === 0) break
      const last = page[page.length - 1]!
      next = yield* Effect.fork(fetchPage([last.stream_id, last.version]))
      const finished: Array<Order> = []
      for (const row of page) {
        if (current?.id !== row.stream_id) {
          if (current?.state) finished.push(current.state)
          current = { id: row.stream_id, state: undefined }
        }
        current.state = evolve(current.state, decodeEvent(row.type, row.schema_version, row.data))
      }
      events += page.length
      yield* onOrders(finished)
      yield* onPage(events)
    }
    if (current?.state) yield* onOrders([current.state])
    return events
  })

export const rebuildOrders = (onProgress: (p: Progress) => Effect.Effect<void> = () => Effect.void) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const started = Date.now()
    yield* sql`DROP TABLE IF EXISTS orders_rebuild`
    yield* sql`CREATE TABLE orders_rebuild (LIKE orders INCLUDING ALL)`
    let orders = 0
    // bulk pass in one snapshot; remember which transactions it could not see
    const { events, xmin } = yield* sql.withTransaction(Effect.gen(function*() {
      yield* sql`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`
      const [snap] = yield* sql<{ xmin: string; total: number }>`
        SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin, (SELECT count(*) FROM events)::int AS total`
      const total = snap!.total
      const events = yield* foldLog(
        sql,
        (batch) => Effect.tap(writeOrders(sql, "orders_rebuild", batch), () => Effect.sync(() => orders += batch.length)),
        (done) => {
          const seconds = Math.max((Date.now() - started) / 1000, 0.001)
          const rate = done / seconds
          return onProgress({ done, total, eventsPerSecond: rate, etaSeconds: rate > 0 ? Math.max(0, (total - done) / rate) : 0 })
        }
      )
      return { events, xmin: snap!.xmin }
    }))
    // swap: appends wait for this transaction only
    const caughtUp = yield* sql.withTransaction(Effect.gen(function*() {
      yield* sql`LOCK TABLE orders IN EXCLUSIVE MODE`
      const late = yield* sql<{ stream_id: string }>`
        SELECT DISTINCT stream_id FROM events WHERE transaction_id >= ${xmin}::xid8`
      for (const { stream_id } of late) {
        const rows = yield* sql<EventPage>`
          SELECT stream_id, version, type, schema_version, data FROM events WHERE stream_id = ${stream_id} ORDER BY version`
        const state = fold(rows.map((r) => decodeEvent(r.type, r.schema_version, r.data)))
        if (state) yield* writeOrders(sql, "orders_rebuild", [state])
      }
      yield* sql`ALTER TABLE orders RENAME TO orders_replaced`
      yield* sql`ALTER TABLE orders_rebuild RENAME TO orders`
      yield* sql`DROP TABLE orders_replaced`
      return late.length
    }))
    return { events, orders, caughtUp, seconds: (Date.now() - started) / 1000 } satisfies RebuildResult
  }).pipe(orStoreError)

export interface Difference {
  readonly orderId: string
  readonly live: Order | undefined
  readonly folded: Order | undefined
}

const key = (o: Order | undefined) => o === undefined ? "" : JSON.stringify(toParams(o))

/** Every order whose live row differs from the fold of its stream (missing or extra rows included). */
export const verifyOrders = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  return yield* sql.withTransaction(Effect.gen(function*() {
    yield* sql`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`
    const differences: Array<Difference> = []
    const folded = new Map<string, Order>()
    yield* foldLog(sql, (batch) => Effect.sync(() => batch.forEach((o) => folded.set(o.orderId, o))), () => Effect.void)
    let after = "00000000-0000-0000-0000-000000000000"
    for (;;) {
      const rows = yield* sql<OrderRow>`
        SELECT ${sql.literal(selectColumns)} FROM orders WHERE order_id > ${after}::uuid ORDER BY order_id LIMIT ${pageSize}`
      if (rows.length === 0) break
      for (const row of rows) {
        const live = orderFromRow(row)
        const expected = folded.get(live.orderId)
        if (key(live) !== key(expected)) differences.push({ orderId: live.orderId, live, folded: expected })
        folded.delete(live.orderId)
      }
      after = rows[rows.length - 1]!.order_id
    }
    for (const [orderId, expected] of folded) differences.push({ orderId, live: undefined, folded: expected })
    return differences
  }))
}).pipe(orStoreError)

/** One orders rebuild at a time per process, started in the background (admin HTTP), with its progress. */
export class RebuildJobs extends Effect.Service<RebuildJobs>()("RebuildJobs", {
  scoped: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const scope = yield* Effect.scope
    const state: {
      running: boolean
      progress: Progress | null
      lastResult: RebuildResult | null
      lastError: string | null
    } = { running: false, progress: null, lastResult: null, lastError: null }
    const status = () => ({ ...state })
    return {
      status: Effect.sync(status),
      /** Start a rebuild unless one runs; false when one is already running. */
      start: Effect.suspend(() => {
        if (state.running) return Effect.succeed(false)
        state.running = true
        state.progress = null
        state.lastError = null
        return rebuildOrders((p) => Effect.sync(() => void (state.progress = p))).pipe(
          Effect.provideService(SqlClient.SqlClient, sql),
          Effect.tap((r) => Effect.sync(() => void (state.lastResult = r))),
          Effect.tapErrorCause((cause) => Effect.sync(() => void (state.lastError = String(cause).slice(0, 1000)))),
          Effect.ensuring(Effect.sync(() => void (state.running = false))),
          Effect.catchAllCause(() => Effect.void),
          Effect.forkIn(scope),
          Effect.as(true)
        )
      })
    } as const
  })
}) {}
