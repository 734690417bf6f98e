/**
 * Rows sent as one array parameter per column and turned back into rows by `unnest` (one round trip and one
 * statement for any number of rows). Used by the append statement for each inline projection's input and by the
 * projection rebuild.
 */
import type { SqlClient, Statement } from "@effect/sql"

/** A value as it is sent in an array parameter (dates as ISO strings, bigints as text, JSON as its text). */
export type SqlValue = string | number | boolean | null

/** Column names with their PostgreSQL types, in the order rows are read. */
export type Columns<Row> = { readonly [K in keyof Row]: string }

/** `SELECT * FROM unnest(…) AS alias(columns…)` over `rows`. */
export const unnestRows = <Row extends Readonly<Record<string, SqlValue>>>(
  sql: SqlClient.SqlClient,
  columns: Columns<Row>,
  rows: ReadonlyArray<Row>,
  alias = "t"
): Statement.Fragment => {
  const names = Object.keys(columns) as Array<keyof Row & string>
  const arrays = names.map((name) => sql`${rows.map((row) => row[name])}::${sql.literal(columns[name])}[]`)
  return sql`SELECT * FROM unnest(${sql.csv(arrays)}) AS ${sql.literal(alias)}(${sql.literal(names.join(", "))})`
}
