/**
 * The `orders` projection's table (docs/ARCHITECTURE.md "Projections"), defined once: its columns, its row
 * codec, its upsert (a row never goes back to an older version) and its in-memory twin. Registered with the
 * event store as an inline projection (`OrdersProjection`): every append that carries the order after its
 * events (`OrderAfterAppend` in its inputs) upserts that row in the append's transaction, so reads after a 201
 * see the order. The rebuild (Rebuild.ts) writes through the same upsert.
 */
import type { SqlClient, Statement } from "@effect/sql"
import { Context, Effect } from "effect"
import { memoryTable } from "../database/MemoryDatabase.js"
import { type Columns, unnestRows } from "../database/UnnestRows.js"
import { Money } from "../domain/Money.js"
import type { Order } from "../domain/Order.js"
import { OrderAfterAppend } from "../eventstore/EventStore.js"
import { inlineProjection } from "../eventstore/InlineProjection.js"

/** A row as sent to PostgreSQL (array parameters: dates as ISO text, the amount as text). */
type OrderParams = {
  readonly order_id: string
  readonly user_id: string
  readonly amount_minor: string
  readonly currency: string
  readonly status: string
  readonly payment_id: string | null
  readonly reason: string | null
  readonly version: number
  readonly created_at: string
  readonly updated_at: string
}

const columns: Columns<OrderParams> = {
  order_id: "uuid",
  user_id: "uuid",
  amount_minor: "bigint",
  currency: "text",
  status: "text",
  payment_id: "uuid",
  reason: "text",
  version: "int",
  created_at: "timestamptz",
  updated_at: "timestamptz"
}
const columnList = Object.keys(columns).join(", ")

export const toParams = (order: Order): OrderParams => ({
  order_id: order.orderId,
  user_id: order.userId,
  amount_minor: order.amount.minor.toString(),
  currency: order.amount.currency,
  status: order.status,
  payment_id: order.paymentId,
  reason: order.reason,
  version: order.version,
  created_at: order.createdAt.toISOString(),
  updated_at: order.updatedAt.toISOString()
})

/** A row as read (selected with `selectColumns`): the same, with its times as dates. */
export type OrderRow = Omit<OrderParams, "created_at" | "updated_at"> & { readonly created_at: Date; readonly updated_at: Date }

/** Select list of an OrderRow. */
export const selectColumns = columnList.replace("amount_minor", "amount_minor::text AS amount_minor")

export const orderFromRow = (row: OrderRow): Order => ({
  orderId: row.order_id as Order["orderId"],
  userId: row.user_id as Order["userId"],
  amount: new Money({ minor: BigInt(row.amount_minor), currency: row.currency as Money["currency"] }, { disableValidation: true }),
  status: row.status as Order["status"],
  paymentId: row.payment_id as Order["paymentId"],
  reason: row.reason,
  version: row.version,
  createdAt: row.created_at,
  updatedAt: row.updated_at
})

/** Upsert the rows `source` selects (the orders columns, by name) into `table`; an older version never wins. */
export const upsertOrders = (sql: SqlClient.SqlClient, table: string, source: Statement.Fragment) =>
  sql`
    INSERT INTO ${sql(table)} (${sql.literal(columnList)}) SELECT ${sql.literal(columnList)} FROM (${source}) s
    ON CONFLICT (order_id) DO UPDATE SET
      status = EXCLUDED.status, payment_id = EXCLUDED.payment_id, reason = EXCLUDED.reason,
      version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
    WHERE ${sql(table)}.version < EXCLUDED.version`

/** Upsert `orders` (folded elsewhere, e.g. by the rebuild) into `table` in one statement. */
export const writeOrders = (sql: SqlClient.SqlClient, table: string, orders: ReadonlyArray<Order>) =>
  orders.length === 0 ? Effect.void : Effect.asVoid(upsertOrders(sql, table, unnestRows(sql, columns, orders.map(toParams))))

/** The in-memory `orders` table: order id → order. */
export const MemoryOrders = memoryTable("orders", () => new Map<string, Order>())

export const OrdersProjection = inlineProjection({
  name: "orders",
  pg: {
    input: {
      columns,
      rows: (request) => {
        const order = Context.getOption(request.inputs, OrderAfterAppend)
        return order._tag === "Some" ? [toParams(order.value)] : []
      }
    },
    write: (sql, { input, written }) =>
      upsertOrders(sql, "orders", sql`SELECT * FROM ${input} WHERE i IN (SELECT i FROM ${written})`)
  },
  memory: (db) => {
    const orders = db.table(MemoryOrders)
    return (request) => {
      const order = Context.getOption(request.inputs, OrderAfterAppend)
      if (order._tag === "None") return
      const current = orders.get(order.value.orderId)
      if (current === undefined || current.version < order.value.version) orders.set(order.value.orderId, order.value)
    }
  }
})
