/** Read side for operators: rows of the `orders` projection against events in the log it folds. */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { orStoreError, type StoreError } from "../Infrastructure.js"

export interface OrdersProjectionCounts {
  readonly rows: number
  readonly events: number
}

export const ordersProjectionCounts: Effect.Effect<OrdersProjectionCounts, StoreError, SqlClient.SqlClient> = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) =>
    sql<{ rows: number; events: number }>`
      SELECT (SELECT count(*) FROM orders)::int AS rows, (SELECT count(*) FROM events)::int AS events`.pipe(
      Effect.map(([counts]) => counts!),
      orStoreError
    )
)
