/**
 * Reads of the `orders` projection (OrdersTable.ts, written inline by every append, docs/ARCHITECTURE.md
 * "Projections"): one order, or a page of orders filtered by status and user, newest first (order ids are
 * UUIDv7, so id order is creation order).
 */
import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, Option } from "effect"
import type { Order, OrderId, OrderStatus, UserId } from "../domain/Order.js"
import { MemoryDatabase } from "../database/MemoryDatabase.js"
import { MemoryOrders, orderFromRow, type OrderRow, selectColumns } from "./OrdersTable.js"
import { orStoreError, type StoreError } from "../Infrastructure.js"

export interface OrderQuery {
  readonly status?: OrderStatus | undefined
  readonly userId?: UserId | undefined
  /** Only orders created before this one (the cursor of the previous page). */
  readonly before?: OrderId | undefined
  readonly limit: number
}

export class OrdersReadModel extends Context.Tag("OrdersReadModel")<OrdersReadModel, {
  readonly get: (orderId: OrderId) => Effect.Effect<Option.Option<Order>, StoreError>
  readonly list: (query: OrderQuery) => Effect.Effect<ReadonlyArray<Order>, StoreError>
}>() {}

export const PgOrdersReadModel = Layer.effect(
  OrdersReadModel,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return OrdersReadModel.of({
      get: (orderId) =>
        sql<OrderRow>`SELECT ${sql.literal(selectColumns)} FROM orders WHERE order_id = ${orderId}`.pipe(
          Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), orderFromRow)),
          orStoreError
        ),
      list: (query) =>
        sql<OrderRow>`SELECT ${sql.literal(selectColumns)} FROM orders WHERE ${
          sql.and([
            query.status ? sql`status = ${query.status}` : sql`true`,
            query.userId ? sql`user_id = ${query.userId}` : sql`true`,
            query.before ? sql`order_id < ${query.before}` : sql`true`
          ])
        } ORDER BY order_id DESC LIMIT ${query.limit}`.pipe(Effect.map((rows) => rows.map(orderFromRow)), orStoreError)
    })
  })
)

export const MemoryOrdersReadModel = Layer.effect(
  OrdersReadModel,
  Effect.map(MemoryDatabase, (db) => {
    const orders = db.table(MemoryOrders)
    return OrdersReadModel.of({
      get: (orderId) => Effect.sync(() => Option.fromNullable(orders.get(orderId))),
      list: (query) =>
        Effect.sync(() =>
          [...orders.values()]
            .filter((o) =>
              (query.status === undefined || o.status === query.status) &&
              (query.userId === undefined || o.userId === query.userId) &&
              (query.before === undefined || o.orderId < query.before)
            )
            .sort((a, b) => (a.orderId < b.orderId ? 1 : a.orderId > b.orderId ? -1 : 0))
            .slice(0, query.limit)
        )
    })
  })
)
