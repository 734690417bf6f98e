/**
 * What a request that failed unexpectedly answers (invariant 11: never a 500 for an infrastructure blip, never
 * an empty error body). Typed errors are the API spec's business; this middleware sees the defects:
 * - an infrastructure failure (the database connection lost or refused, the pool exhausted, a serialization
 *   failure, the broker unreachable) → 503 with `Retry-After` and a JSON body naming the cause class;
 * - anything else is a bug → 500 with the request's correlation id in the body.
 * Both are logged (PROCESSING_ERROR with route, correlation id and the cause) and counted in
 * `http_failures_total{status,cause}`. Every response carries the correlation id as `X-Request-Id`.
 */
import { HttpApp, HttpMiddleware, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Cause, Effect, FiberRef, Metric, Option } from "effect"
import { uuidv4 } from "../Ids.js"

export type CauseClass = "DatabaseUnavailable" | "BrokerUnavailable" | "Overloaded"

/** The request's correlation id: `X-Request-Id` when the client sent a sane one, else a fresh UUID. */
export const currentCorrelationId = FiberRef.unsafeMake<string | undefined>(undefined)

export const correlationIdOf = (request: HttpServerRequest.HttpServerRequest) => {
  const given = request.headers["x-request-id"]
  return given !== undefined && /^[\x21-\x7e]{1,128}$/.test(given) ? given : uuidv4()
}

/** The correlation id the failure middleware chose for this request (the same one its error bodies carry). */
export const requestCorrelationId = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.map(FiberRef.get(currentCorrelationId), (id) => id ?? correlationIdOf(request))

export const httpFailures = Metric.counter("http_failures_total", {
  description: "requests answered 5xx because of a defect: by status and cause class",
  incremental: true
})

/** PostgreSQL SQLSTATEs that say "the database cannot serve you right now", not "your query is wrong". */
const transientSqlState = /^(08|53|57P0[1-3]|40001|40P01|55P03|58)/

const transientNodeCode = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENOTFOUND", "EAI_AGAIN", "ECONNABORTED"])

const transientMessage = /connection terminated|terminating connection|connection (?:error|ended|closed)|not queryable|timeout exceeded when trying to connect|client has encountered a connection error|too many clients|the database system is (?:starting up|shutting down|in recovery)|could not connect|server closed the connection/i

/** The cause class of an infrastructure failure anywhere in an error's `cause` chain, or none for a bug. */
export const classifyDefect = (defect: unknown): Option.Option<CauseClass> => {
  const seen = new Set<unknown>()
  let current: unknown = defect
  while (current !== null && typeof current === "object" && !seen.has(current)) {
    seen.add(current)
    const e = current as { _tag?: unknown; name?: unknown; code?: unknown; message?: unknown; cause?: unknown }
    const tag = typeof e._tag === "string" ? e._tag : ""
    const name = typeof e.name === "string" ? e.name : ""
    const code = typeof e.code === "string" ? e.code : ""
    const message = typeof e.message === "string" ? e.message : ""
    if (name.startsWith("KafkaJS") || tag === "KafkaError") return Option.some("BrokerUnavailable")
    if (code === "53300") return Option.some("Overloaded")
    if (transientSqlState.test(code) && /^[0-9A-Z]{5}$/.test(code)) return Option.some("DatabaseUnavailable")
    if (transientNodeCode.has(code) || transientMessage.test(message)) return Option.some("DatabaseUnavailable")
    current = e.cause
  }
  return Option.none()
}

const messages: Record<CauseClass, string> = {
  DatabaseUnavailable: "the database is not reachable right now; retry the request (with the same Idempotency-Key)",
  BrokerUnavailable: "the message broker is not reachable right now; retry the request",
  Overloaded: "the service is overloaded right now; retry the request"
}

/** The first defect of a cause that is not a response a handler chose to die with. */
const defectOf = (cause: Cause.Cause<unknown>): Option.Option<unknown> =>
  Option.fromNullable(Cause.defects(cause).pipe((defects) => [...defects].find((d) => !HttpServerResponse.isServerResponse(d))))

/**
 * The API-level middleware (HttpApiBuilder.middleware): runs each request with its correlation id and turns
 * defects into the 503 / 500 above. Typed failures and interruptions pass through untouched.
 */
export const failureMiddleware = (options: { readonly retryAfterSeconds: number }) =>
  HttpMiddleware.make((app) =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const correlationId = correlationIdOf(request)
      // every response, the API's typed errors included, names the correlation id
      yield* HttpApp.appendPreResponseHandler((_, response) =>
        Effect.succeed(HttpServerResponse.setHeader(response, "x-request-id", correlationId))
      )
      const answered = app.pipe(
        Effect.catchAllCause((cause) => {
          const defect = defectOf(cause)
          if (Option.isNone(defect)) return Effect.failCause(cause)
          const causeClass = classifyDefect(defect.value)
          const route = `${request.method} ${request.url.split("?")[0]}`
          const status = Option.isSome(causeClass) ? 503 : 500
          const log = Option.isSome(causeClass)
            ? Effect.logWarning("request failed: infrastructure unavailable")
            : Effect.logError("request failed: unexpected error")
          return log.pipe(
            Effect.annotateLogs({
              type: "PROCESSING_ERROR",
              route,
              correlationId,
              status,
              causeClass: Option.getOrElse(causeClass, () => "InternalError"),
              cause: Cause.pretty(cause)
            }),
            Effect.zipRight(
              Metric.update(
                httpFailures.pipe(
                  Metric.tagged("status", String(status)),
                  Metric.tagged("cause", Option.getOrElse(causeClass, () => "InternalError"))
                ),
                1
              )
            ),
            Effect.as(
              Option.isSome(causeClass)
                ? HttpServerResponse.unsafeJson({
                  _tag: "ServiceUnavailable",
                  cause: causeClass.value,
                  message: messages[causeClass.value],
                  correlationId
                }, { status: 503, headers: { "retry-after": String(options.retryAfterSeconds) } })
                : HttpServerResponse.unsafeJson({
                  _tag: "InternalError",
                  message: "an unexpected error; quote the correlation id when you report it",
                  correlationId
                }, { status: 500 })
            )
          )
        }),
        Effect.locally(currentCorrelationId, correlationId)
      )
      return yield* answered
    })
  )
