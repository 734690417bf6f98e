/**
 * The append statement: ONE statement (one round trip, atomic) for one append or a group-committed batch of
 * appends of distinct streams. Data-modifying CTEs insert the events of every append whose stream is at its
 * expected version, whose events are all new and whose projections' guards admit it (`written`), then run each inline projection's statement over
 * those appends and their inserted events (`appended`), and NOTIFY the appends channel (delivered at commit)
 * when anything was written. UNIQUE(stream_id, version) stops two concurrent statements that both saw the same
 * version; UNIQUE(event_id) a retried append racing its first: either fails the whole statement (23505).
 */
import type { SqlClient, Statement } from "@effect/sql"
import { APPENDS_CHANNEL } from "../database/Notifications.js"
import { unnestRows } from "../database/UnnestRows.js"
import { encodeEvent } from "./EventCodec.js"
import type { AppendRequest } from "./EventStore.js"
import type { InlineProjection } from "./InlineProjection.js"

/** Per request, in order: what its stream held and how many of its events were stored or inserted. */
export interface AppendOutcome {
  readonly current: number
  readonly duplicates: number
  readonly inserted: number
}

/** Each projection's parts: its input rows (when any append has some), its guard over them, its statement. */
const projectionParts = (sql: SqlClient.SqlClient, projections: ReadonlyArray<InlineProjection>, requests: ReadonlyArray<AppendRequest>) => {
  const inputs: Array<Statement.Fragment> = []
  const guards: Array<Statement.Fragment> = []
  const writes: Array<Statement.Fragment> = []
  for (const projection of projections) {
    const write = (input: Statement.Fragment) =>
      sql`${sql.literal(`p_${projection.name}`)} AS (${
        projection.pg.write(sql, { input, written: sql.literal("written"), appended: sql.literal("appended") })
      })`
    const spec = projection.pg.input
    if (spec === undefined) {
      writes.push(write(sql.literal("(SELECT NULL::int AS i WHERE false)")))
      continue
    }
    const rows = requests.flatMap((request, k) => spec.rows(request).map((row) => ({ ...row, i: k + 1 })))
    if (rows.length === 0) continue
    const input = sql.literal(`p_${projection.name}_input`)
    inputs.push(sql`${input} AS (${unnestRows(sql, { ...spec.columns, i: "int" }, rows)})`)
    if (projection.pg.guard !== undefined) {
      guards.push(sql`AND NOT EXISTS (SELECT 1 FROM ${input} c WHERE c.i = r.i AND NOT (${projection.pg.guard(sql)}))`)
    }
    writes.push(write(input))
  }
  return { inputs, guards, writes }
}

export const appendStatement = (sql: SqlClient.SqlClient, projections: ReadonlyArray<InlineProjection>) =>
(requests: ReadonlyArray<AppendRequest>) => {
  const appends = requests.map((r, k) => ({
    i: k + 1,
    stream_id: r.streamId,
    expected: r.expectedVersion,
    metadata: JSON.stringify(r.metadata)
  }))
  const events = requests.flatMap((r, k) =>
    r.events.map((event) => {
      const encoded = encodeEvent(event)
      return { i: k + 1, event_id: event.eventId, type: encoded.type, schema_version: encoded.schemaVersion, data: JSON.stringify(encoded.data) }
    })
  ).map((row, n) => ({ ...row, n }))
  const { guards, inputs, writes } = projectionParts(sql, projections, requests)
  return sql<AppendOutcome & { readonly i: number }>`
    WITH r AS (${unnestRows(sql, { i: "int", stream_id: "uuid", expected: "int", metadata: "jsonb" }, appends)}),
    e AS (${
    unnestRows(sql, { i: "int", event_id: "uuid", type: "text", schema_version: "smallint", data: "jsonb", n: "int" }, events)
  }),
    ${inputs.length > 0 ? sql`${sql.csv(inputs)},` : sql``}
    chk AS (
      SELECT r.i,
             (SELECT coalesce(max(x.version), 0) FROM events x WHERE x.stream_id = r.stream_id)::int AS current,
             (SELECT count(*) FROM e JOIN events x ON x.event_id = e.event_id WHERE e.i = r.i)::int AS duplicates
      FROM r
    ),
    written AS (
      SELECT r.* FROM r JOIN chk ON chk.i = r.i
      WHERE chk.current = r.expected AND chk.duplicates = 0 AND EXISTS (SELECT 1 FROM e WHERE e.i = r.i)
        ${guards.length > 0 ? sql.join(" ", false)(guards) : sql``}
    ),
    appended AS (
      INSERT INTO events (stream_id, version, event_id, type, schema_version, data, metadata)
      SELECT w.stream_id, w.expected + (row_number() OVER (PARTITION BY e.i ORDER BY e.n))::int, e.event_id,
             e.type, e.schema_version, e.data, w.metadata
      FROM e JOIN written w ON w.i = e.i
      ORDER BY e.n
      RETURNING position, stream_id
    ),
    ${writes.length > 0 ? sql`${sql.csv(writes)},` : sql``}
    note AS (SELECT pg_notify(${APPENDS_CHANNEL}, 'append') FROM (SELECT 1 FROM appended LIMIT 1) wrote)
    -- \`notified\` is read by nobody: selecting from \`note\` is what makes PostgreSQL evaluate it
    SELECT chk.i, chk.current, chk.duplicates,
           (SELECT count(*) FROM appended a WHERE a.stream_id = r.stream_id)::int AS inserted,
           (SELECT count(*) FROM note)::int AS notified
    FROM chk JOIN r ON r.i = chk.i
    ORDER BY chk.i`
}
