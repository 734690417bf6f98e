/**
 * Inline projections: what other owners write in an append's transaction — the `orders` row, the outbox rows,
 * the idempotency record, the inbox row, or anything added later — registered with the event store when its
 * layer is built, as Emmett's PostgreSQL event store is given its inline projections. The store knows none of
 * their tables: each owner defines, in its own folder, its SQL (input rows and a data-modifying statement)
 * and its in-memory twin. PgEventStore assembles every projection's SQL into its one append statement (one
 * round trip and one commit, also for a group-committed batch); MemoryEventStore runs every twin in the same
 * step as the events. A projection writes only for appends that wrote their events: not on a conflict, not for
 * a duplicate. What a projection needs beyond the events it reads from the request's `inputs`, by its own tag.
 */
import type { SqlClient, Statement } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import type { MemoryDatabase } from "../database/MemoryDatabase.js"
import type { Columns, SqlValue } from "../database/UnnestRows.js"
import type { AppendRequest, RecordedEvent } from "./EventStore.js"

type Row = Readonly<Record<string, SqlValue>>

/** The relations of the append statement a projection's SQL reads. */
export interface AppendRelations {
  /** Its input rows from every append of the statement, with `i`: which append a row belongs to. */
  readonly input: Statement.Fragment
  /** The appends of the statement that passed their checks and wrote their events: `i`, `stream_id`. */
  readonly written: Statement.Fragment
  /** The events the statement inserted: `position`, `stream_id`. */
  readonly appended: Statement.Fragment
}

export interface InlineProjection<R extends Row = Row> {
  /** Unique among the store's projections, [a-z][a-z0-9_]*: names its part of the append statement. */
  readonly name: string
  readonly pg: {
    /** Its input rows from one append (sent as one array per column). Without: it reads `appended` only. When
     * no append of a statement has rows for it, its statement is left out. */
    readonly input?: { readonly columns: Columns<R>; readonly rows: (request: AppendRequest) => ReadonlyArray<R> }
    /** Its data-modifying statement, run inside the append statement. It must not raise a unique violation
     * (use ON CONFLICT): the store reads 23505 as an append racing another and answers conflict or duplicate. */
    readonly write: (sql: SqlClient.SqlClient, from: AppendRelations) => Statement.Fragment
    /** A condition on each of its input rows (alias `c`) that an append must meet to be written at all, e.g.
     * that the Idempotency-Key it completes is still claimed by its request. An append refused by a guard
     * writes nothing and is answered as a conflict. Lock what it reads (FOR SHARE) so that it holds until commit. */
    readonly guard?: (sql: SqlClient.SqlClient) => Statement.Fragment
  }
  /** The in-memory twin of `pg.guard`: whether an append may be written. */
  readonly admits?: (db: Context.Tag.Service<MemoryDatabase>) => (request: AppendRequest) => boolean
  /** Its in-memory twin: over one database, what it writes for an append that stored `recorded`. */
  readonly memory: (
    db: Context.Tag.Service<MemoryDatabase>
  ) => (request: AppendRequest, recorded: ReadonlyArray<RecordedEvent>) => void
}

/** Defines a projection (checks its input columns against its rows). */
export const inlineProjection = <R extends Row>(projection: InlineProjection<R>): InlineProjection =>
  projection

/** The projections an event store runs in every append. A name that is not an identifier, or given twice, is a
 * defect when the layer is built. */
export class InlineProjections extends Context.Tag("InlineProjections")<InlineProjections, ReadonlyArray<InlineProjection>>() {
  static readonly layer = (...projections: ReadonlyArray<InlineProjection>) =>
    Layer.effect(
      InlineProjections,
      Effect.suspend(() => {
        const names = projections.map((p) => p.name)
        const invalid = names.find((name) => !/^[a-z][a-z0-9_]*$/.test(name))
        if (invalid !== undefined) return Effect.dieMessage(`inline projection name ${invalid}: lower case letters, digits and _ only`)
        const repeated = names.find((name, k) => names.indexOf(name) !== k)
        if (repeated !== undefined) return Effect.dieMessage(`inline projection ${repeated} registered twice`)
        return Effect.succeed(projections)
      })
    )
}
