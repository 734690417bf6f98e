/**
 * PostgreSQL refusing rows as a failing server would, for tests of the failure model (issue 23): a trigger
 * `name` on `table` that raises `sqlState` with `message` for each row `when` selects (a trigger WHEN
 * condition over NEW/OLD) while `condition` holds (a plpgsql boolean expression, evaluated per row: e.g. "until
 * a time in a table of the test"). Succeeds with the effect that removes it.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

export interface Refusal {
  readonly name: string
  readonly table: string
  readonly on: "INSERT" | "UPDATE" | "DELETE" | "INSERT OR UPDATE"
  readonly when?: string
  readonly condition?: string
  readonly sqlState: string
  readonly message: string
}

export const refuseRows = ({ condition = "true", message, name, on, sqlState, table, when }: Refusal) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.zipRight(
      sql.unsafe(`
        CREATE OR REPLACE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF ${condition} THEN
            RAISE EXCEPTION '${message.replaceAll("'", "''")}' USING ERRCODE = '${sqlState}';
          END IF;
          RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
        END $$`),
      sql.unsafe(`
        CREATE OR REPLACE TRIGGER ${name} BEFORE ${on} ON ${table} FOR EACH ROW
        ${when === undefined ? "" : `WHEN (${when})`} EXECUTE FUNCTION ${name}()`)
    ).pipe(Effect.as(sql.unsafe(`DROP TRIGGER IF EXISTS ${name} ON ${table}`).pipe(Effect.asVoid)))
  )
