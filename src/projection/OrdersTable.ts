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
import type { Order, Refund } from "../domain/Order.js"
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
  readonly refunded_minor: string
  /** The refunds (JSON), null while there are none. */
  readonly refunds: string | null
  /** For the scheduler: the earliest due retry of a pending refund, and the oldest refund never tried yet. */
  readonly refund_due_at: string | null
  readonly refund_waiting_since: string | null
  /** … and the oldest parked one (the provider is asked whether it made it). */
  readonly refund_parked_since: string | null
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
  updated_at: "timestamptz",
  refunded_minor: "bigint",
  refunds: "jsonb",
  refund_due_at: "timestamptz",
  refund_waiting_since: "timestamptz",
  refund_parked_since: "timestamptz"
}
const columnList = Object.keys(columns).join(", ")

/** A refund as stored in the row's `refunds` (amount as text, times as ISO text). */
interface StoredRefund {
  readonly refundId: string
  readonly amountMinor: string
  readonly currency: string
  readonly reason: string | null
  readonly status: Refund["status"]
  readonly failure: string | null
  readonly attempt: number
  readonly dueAt: string | null
  readonly parked: boolean
  readonly requestedAt: string
  readonly updatedAt: string
}

const storeRefund = (r: Refund): StoredRefund => ({
  refundId: r.refundId,
  amountMinor: r.amount.minor.toString(),
  currency: r.amount.currency,
  reason: r.reason,
  status: r.status,
  failure: r.failure,
  attempt: r.attempt,
  dueAt: r.dueAt?.toISOString() ?? null,
  parked: r.parked,
  requestedAt: r.requestedAt.toISOString(),
  updatedAt: r.updatedAt.toISOString()
})

const loadRefund = (r: StoredRefund): Refund => ({
  refundId: r.refundId as Refund["refundId"],
  amount: new Money({ minor: BigInt(r.amountMinor), currency: r.currency as Money["currency"] }, { disableValidation: true }),
  reason: r.reason,
  status: r.status,
  failure: r.failure,
  attempt: r.attempt,
  dueAt: r.dueAt === null ? null : new Date(r.dueAt),
  parked: r.parked,
  requestedAt: new Date(r.requestedAt),
  updatedAt: new Date(r.updatedAt)
})

const earliest = (dates: ReadonlyArray<Date>): string | null =>
  dates.length === 0 ? null : new Date(Math.min(...dates.map((d) => d.getTime()))).toISOString()

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
  updated_at: order.updatedAt.toISOString(),
  refunded_minor: order.refunded.toString(),
  refunds: order.refunds.length === 0 ? null : JSON.stringify(order.refunds.map(storeRefund)),
  refund_due_at: earliest(order.refunds.flatMap((r) => r.status === "pending" && r.dueAt !== null ? [r.dueAt] : [])),
  refund_waiting_since: earliest(
    order.refunds.flatMap((r) => r.status === "pending" && r.dueAt === null && !r.parked ? [r.requestedAt] : [])
  ),
  refund_parked_since: earliest(order.refunds.flatMap((r) => r.status === "pending" && r.parked ? [r.updatedAt] : []))
})

/** A row as read (selected with `selectColumns`): the same, with its times as dates. */
export type OrderRow = Omit<OrderParams, "created_at" | "updated_at" | "refunds" | "refund_due_at" | "refund_waiting_since" | "refund_parked_since"> & {
  readonly created_at: Date
  readonly updated_at: Date
  readonly refunds: ReadonlyArray<StoredRefund> | null
}

/** Select list of an OrderRow (the scheduler's columns are derived from `refunds`: not read back). */
export const selectColumns = columnList.replace("amount_minor", "amount_minor::text AS amount_minor")
  .replace("refunded_minor", "refunded_minor::text AS refunded_minor")
  .replace(", refund_due_at, refund_waiting_since, refund_parked_since", "")

export const orderFromRow = (row: OrderRow): Order => ({
  orderId: row.order_id as Order["orderId"],
  userId: row.user_id as Order["userId"],
  amount: new Money({ minor: BigInt(row.amount_minor), currency: row.currency as Money["currency"] }, { disableValidation: true }),
  status: row.status as Order["status"],
  paymentId: row.payment_id as Order["paymentId"],
  reason: row.reason,
  version: row.version,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
  refunded: BigInt(row.refunded_minor),
  refunds: row.refunds === null ? [] : row.refunds.map(loadRefund)
})

/** Upsert the rows `source` selects (the orders columns, by name) into `table`; an older version never wins. */
export const upsertOrders = (sql: SqlClient.SqlClient, table: string, source: Statement.Fragment) =>
  sql`
    INSERT INTO ${sql(table)} (${sql.literal(columnList)}) SELECT ${sql.literal(columnList)} FROM (${source}) s
    ON CONFLICT (order_id) DO UPDATE SET
      status = EXCLUDED.status, payment_id = EXCLUDED.payment_id, reason = EXCLUDED.reason,
      version = EXCLUDED.version, updated_at = EXCLUDED.updated_at, refunded_minor = EXCLUDED.refunded_minor,
      refunds = EXCLUDED.refunds, refund_due_at = EXCLUDED.refund_due_at,
      refund_waiting_since = EXCLUDED.refund_waiting_since, refund_parked_since = EXCLUDED.refund_parked_since
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
