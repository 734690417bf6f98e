/**
 * One model of infrastructure failure (docs/ARCHITECTURE.md "Failures"): the one place that knows which
 * failures of the database and the broker heal by themselves (transient) and which recur on every try
 * (permanent). The ports (event store, inbox, outbox, idempotency keys, dead letters, scheduler and projection
 * queries) fail with the typed errors below instead of dying; every consumer of the rule — the HTTP edge
 * (transient → 503 + Retry-After, permanent → 500 with the correlation id) and the payment worker (transient →
 * retry the message, permanent → park it with its SQLSTATE) — asks `classify`, nothing sniffs on its own.
 *
 * The rule, in order (the first that applies), over an error and its `cause` chain:
 * 1. an error already classified (StoreUnavailable, StoreFailed) keeps its class;
 * 2. a broker error (kafkajs) is transient;
 * 3. a network error code (ECONNREFUSED, EPIPE, …) is transient — tested before the SQLSTATE, as EPIPE has a
 *    SQLSTATE's shape;
 * 4. a SQLSTATE decides by `transientSqlStates` — the server answered and said what it thinks: connection
 *    (08), serialization and deadlock (40001, 40P01), resources (53; 53300 too many connections = Overloaded),
 *    lock not available (55P03), canceled (57014, e.g. statement_timeout), shutdown (57P01–57P03), system
 *    errors outside PostgreSQL (58, e.g. an I/O error); any other SQLSTATE (22 data, 23 constraints, 42
 *    syntax and access, 54 limits, …) is permanent: the same statement is refused again;
 * 5. a pool that gave no connection in time, a statement the client gave up on (node-postgres's
 *    query_timeout: "Query read timeout", src/Sql.ts), a connection that ended (by their messages): transient;
 * 6. a SqlError that carries no SQLSTATE at all never reached a server that could refuse it (the client side
 *    of the connection failed): transient;
 * 7. anything else is a bug: permanent.
 */
import { Data, Effect } from "effect"

/** What a client is told a transient failure was (the 503 body's `cause`). */
export type CauseClass = "DatabaseUnavailable" | "BrokerUnavailable" | "Overloaded"

export interface Verdict {
  readonly transient: boolean
  /** For a transient failure, what was unavailable. */
  readonly causeClass: CauseClass | undefined
  /** The SQLSTATE the database answered with, when it did. */
  readonly sqlState: string | undefined
}

/** The database cannot serve this right now and will again: retry (HTTP 503, the worker retries). */
export class StoreUnavailable extends Data.TaggedError("StoreUnavailable")<{
  readonly causeClass: CauseClass
  readonly sqlState: string | undefined
  readonly message: string
  readonly cause: unknown
}> {}

/** The database refused what it was asked and will refuse it on every try (HTTP 500, the worker parks). */
export class StoreFailed extends Data.TaggedError("StoreFailed")<{
  readonly sqlState: string | undefined
  readonly message: string
  readonly cause: unknown
}> {}

/** How every port that talks to the database fails (domain rejections and conflicts aside). */
export type StoreError = StoreUnavailable | StoreFailed

/** SQLSTATEs (by class or exact code) that say "the database cannot serve you right now", not "your statement is wrong". */
export const transientSqlStates: ReadonlyArray<string> = ["08", "40001", "40P01", "53", "55P03", "57014", "57P01", "57P02", "57P03", "58"]

const sqlStatePattern = /^[0-9A-Z]{5}$/

export const isTransientSqlState = (sqlState: string): boolean =>
  transientSqlStates.some((prefix) => sqlState.startsWith(prefix))

const transientNodeCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ECONNABORTED"
])

/** pg's and the pool's words for a connection that is gone or never came (they carry no SQLSTATE). */
const transientMessage =
  /query read timeout|connection terminated|terminating connection|connection (?:error|ended|closed)|not queryable|timeout exceeded when trying to connect|client has encountered a connection error|too many clients|the database system is (?:starting up|shutting down|in recovery)|could not connect|server closed the connection|failed to acquire/i

const verdict = (transient: boolean, causeClass: CauseClass | undefined, sqlState: string | undefined): Verdict => ({
  transient,
  causeClass: transient ? causeClass ?? "DatabaseUnavailable" : undefined,
  sqlState
})

type Link = { readonly _tag?: unknown; readonly name?: unknown; readonly code?: unknown; readonly message?: unknown; readonly cause?: unknown }

/** An error and its `cause` chain, outermost first, each object once (a cycle ends it). */
function* causeChain(error: unknown): Generator<Link> {
  const seen = new Set<unknown>()
  for (let current = error; current !== null && typeof current === "object" && !seen.has(current); current = (current as Link).cause) {
    seen.add(current)
    yield current as Link
  }
}

/** The rule above, for any error (a typed failure, a defect, or a squashed cause). */
export const classify = (error: unknown): Verdict => {
  let sawSqlError = false
  let transientSign = false
  for (const e of causeChain(error)) {
    if (e instanceof StoreUnavailable) return verdict(true, e.causeClass, e.sqlState)
    if (e instanceof StoreFailed) return verdict(false, undefined, e.sqlState)
    const tag = typeof e._tag === "string" ? e._tag : ""
    const name = typeof e.name === "string" ? e.name : ""
    const code = typeof e.code === "string" ? e.code : ""
    if (name.startsWith("KafkaJS") || name === "KafkaError" || tag === "KafkaError") {
      return verdict(true, "BrokerUnavailable", undefined)
    }
    // before the SQLSTATE test: EPIPE has a SQLSTATE's shape
    if (transientNodeCodes.has(code)) return verdict(true, "DatabaseUnavailable", undefined)
    if (sqlStatePattern.test(code)) {
      return isTransientSqlState(code)
        ? verdict(true, code === "53300" ? "Overloaded" : "DatabaseUnavailable", code)
        : verdict(false, undefined, code)
    }
    if (tag === "SqlError") sawSqlError = true
    if (typeof e.message === "string" && transientMessage.test(e.message)) transientSign = true
  }
  return verdict(transientSign || sawSqlError, "DatabaseUnavailable", undefined)
}

const describe = (error: unknown): string => {
  const e = error as { message?: unknown; cause?: { message?: unknown } } | null
  const own = typeof e?.message === "string" ? e.message : String(error)
  const inner = typeof e?.cause?.message === "string" && e.cause.message !== own ? `: ${e.cause.message}` : ""
  return `${own}${inner}`.slice(0, 1000)
}

/** A failure of the database (a SqlError, usually) as the typed error of the ports. */
export const storeError = (error: unknown): StoreError => {
  const { causeClass, sqlState, transient } = classify(error)
  const message = sqlState === undefined ? describe(error) : `${describe(error)} [SQLSTATE ${sqlState}]`
  return transient
    ? new StoreUnavailable({ causeClass: causeClass ?? "DatabaseUnavailable", sqlState, message, cause: error })
    : new StoreFailed({ sqlState, message, cause: error })
}

/** For the ports: a database effect whose failure becomes StoreUnavailable or StoreFailed. */
export const orStoreError = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, StoreError, R> =>
  Effect.mapError(self, storeError)

/** @effect/sql-pg's words for a pool that gave no connection (`Failed to acquire connection`, `… for transaction`). */
const acquireFailure = /^Failed to acquire connection\b/

/**
 * Whether a failure happened before its statement left the process: the pool gave no connection (the database
 * refused or did not answer the connection, or every connection stayed busy past the acquire timeout). Such a
 * statement changed nothing, so nothing needs undoing. Anything else — a reply lost, a connection that ended
 * mid-statement, a timeout while waiting for the answer — may have been applied.
 */
export const neverSent = (error: unknown): boolean => {
  for (const e of causeChain(error)) {
    if (e._tag === "SqlError") return typeof e.message === "string" && acquireFailure.test(e.message)
  }
  return false
}

/** Whether a value is one of the typed store errors (for `Effect.catchIf`). */
export const isStoreError = (error: unknown): error is StoreError =>
  error instanceof StoreUnavailable || error instanceof StoreFailed
