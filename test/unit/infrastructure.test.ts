/**
 * The one rule of transient vs permanent failures (src/Infrastructure.ts), as a table: what the HTTP edge
 * answers 503 vs 500 and what the worker retries vs parks, from the same verdict.
 */
import { describe, expect, it } from "vitest"
import { classify, isTransientSqlState, StoreFailed, storeError, StoreUnavailable } from "../../src/Infrastructure.js"

const sqlError = (code: string | undefined, message = "db said no") => ({
  _tag: "SqlError",
  message: "Failed to execute statement",
  cause: Object.assign(new Error(message), code === undefined ? {} : { code })
})

describe("the transient / permanent rule", () => {
  const table: Array<[string, unknown, boolean, string | undefined]> = [
    // SQLSTATE, by class or exact code: transient
    ["08006 connection failure", sqlError("08006"), true, "DatabaseUnavailable"],
    ["08P01 protocol violation (class 08)", sqlError("08P01"), true, "DatabaseUnavailable"],
    ["40001 serialization failure", sqlError("40001"), true, "DatabaseUnavailable"],
    ["40P01 deadlock", sqlError("40P01"), true, "DatabaseUnavailable"],
    ["53300 too many connections", sqlError("53300"), true, "Overloaded"],
    ["53100 disk full (class 53)", sqlError("53100"), true, "DatabaseUnavailable"],
    ["55P03 lock not available", sqlError("55P03"), true, "DatabaseUnavailable"],
    ["57014 canceled (statement_timeout)", sqlError("57014"), true, "DatabaseUnavailable"],
    ["57P01 admin shutdown", sqlError("57P01"), true, "DatabaseUnavailable"],
    ["57P02 crash shutdown", sqlError("57P02"), true, "DatabaseUnavailable"],
    ["57P03 cannot connect now", sqlError("57P03"), true, "DatabaseUnavailable"],
    ["58030 I/O error (class 58)", sqlError("58030"), true, "DatabaseUnavailable"],
    // SQLSTATE: permanent — the same statement is refused again
    ["22023 invalid parameter value", sqlError("22023"), false, undefined],
    ["22P02 invalid text representation", sqlError("22P02"), false, undefined],
    ["23505 unique violation", sqlError("23505"), false, undefined],
    ["23514 check violation", sqlError("23514"), false, undefined],
    ["42601 syntax error", sqlError("42601"), false, undefined],
    ["42P01 undefined table", sqlError("42P01"), false, undefined],
    ["42703 undefined column", sqlError("42703"), false, undefined],
    ["54000 program limit exceeded", sqlError("54000"), false, undefined],
    ["57P04 database dropped", sqlError("57P04"), false, undefined],
    ["40002 integrity constraint (class 40, not a retry code)", sqlError("40002"), false, undefined],
    // no SQLSTATE: the connection, the pool, the network
    ["ECONNREFUSED", Object.assign(new Error("connect"), { code: "ECONNREFUSED" }), true, "DatabaseUnavailable"],
    ["EPIPE (shaped like a SQLSTATE)", Object.assign(new Error("write"), { code: "EPIPE" }), true, "DatabaseUnavailable"],
    ["pool acquire timeout", sqlError(undefined, "timeout exceeded when trying to connect"), true, "DatabaseUnavailable"],
    ["connection terminated", sqlError(undefined, "Connection terminated unexpectedly"), true, "DatabaseUnavailable"],
    ["client-side statement timeout (query_timeout)", sqlError(undefined, "Query read timeout"), true, "DatabaseUnavailable"],
    ["client-side statement timeout, not wrapped in a SqlError", new Error("Query read timeout"), true, "DatabaseUnavailable"],
    ["a connection ended after its statement timed out", sqlError(undefined, "Client was closed and is not queryable"), true, "DatabaseUnavailable"],
    ["a SqlError that never reached a server", sqlError(undefined, "something odd in the client"), true, "DatabaseUnavailable"],
    // the broker
    ["kafkajs error", Object.assign(new Error("x"), { name: "KafkaJSConnectionError" }), true, "BrokerUnavailable"],
    ["our KafkaError", Object.assign(new Error("x"), { name: "KafkaError" }), true, "BrokerUnavailable"],
    // bugs
    ["a TypeError", new TypeError("cannot read properties of undefined"), false, undefined],
    ["a stack overflow", new RangeError("Maximum call stack size exceeded"), false, undefined],
    ["a string", "boom", false, undefined]
  ]
  it.each(table)("%s", (_, error, transient, causeClass) => {
    const verdict = classify(error)
    expect(verdict.transient).toBe(transient)
    expect(verdict.causeClass).toBe(causeClass)
  })

  it("the SQLSTATE is reported with the verdict", () => {
    expect(classify(sqlError("22023")).sqlState).toBe("22023")
    expect(classify(sqlError("57P01")).sqlState).toBe("57P01")
    expect(isTransientSqlState("0800X")).toBe(true)
    expect(isTransientSqlState("23505")).toBe(false)
  })

  it("a typed store error keeps its class, wherever it sits in the chain", () => {
    const unavailable = storeError(sqlError("57P01"))
    const failed = storeError(sqlError("23514"))
    expect(unavailable).toBeInstanceOf(StoreUnavailable)
    expect(failed).toBeInstanceOf(StoreFailed)
    expect(failed.message).toMatch(/SQLSTATE 23514/)
    expect(classify({ message: "wrapped", cause: unavailable }).transient).toBe(true)
    expect(classify({ message: "wrapped", cause: failed }).transient).toBe(false)
  })
})
