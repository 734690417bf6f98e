/**
 * What a request that failed on infrastructure or on a bug answers (invariant 11: never a 500 for an
 * infrastructure blip, never an empty error body), by the one rule of src/Infrastructure.ts:
 * - a transient failure (the database connection lost or refused, the pool exhausted, a serialization
 *   failure, the broker unreachable) → 503 with `Retry-After` and a JSON body naming the cause class;
 * - a permanent one (the database refuses the statement on every try) or a defect (a bug) → 500 with the
 *   request's correlation id in the body.
 * The ports' typed store errors are turned into the API's ServiceUnavailable / InternalError at the handlers
 * (`answerStoreErrors`); defects by the middleware. Both are logged (PROCESSING_ERROR with route, correlation
 * id and the cause) and counted in `http_failures_total{status,cause}`. Every response carries the correlation
 * id as `X-Request-Id`, and every 503 a `Retry-After`.
 */
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Cause, Effect, Metric, Option } from "effect"
import { uuidv4 } from "../Ids.js"
import { type CauseClass, classify, isStoreError, type StoreError } from "../Infrastructure.js"
import { InternalError, ServiceUnavailable } from "./Errors.js"

/**
 * The correlation id the failure middleware chose for each request, by the request's underlying message (a
 * handler's request object may be another view of the same one): a FiberRef set `locally` cost an
 * acquire/release of the fiber ref on every request (issue 24).
 */
const correlationIds = new WeakMap<object, string>()
const sourceOf = (request: HttpServerRequest.HttpServerRequest): object | undefined =>
  typeof request.source === "object" && request.source !== null ? request.source : undefined

/** The request's correlation id: `X-Request-Id` when the client sent a sane one, else a fresh UUID. */
export const correlationIdOf = (request: HttpServerRequest.HttpServerRequest) => {
  const given = request.headers["x-request-id"]
  return given !== undefined && /^[\x21-\x7e]{1,128}$/.test(given) ? given : uuidv4()
}

/** The correlation id the failure middleware chose for this request (the same one its error bodies carry). */
export const requestCorrelationId = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.sync(() => {
    const source = sourceOf(request)
    return (source === undefined ? undefined : correlationIds.get(source)) ?? correlationIdOf(request)
  })

export const httpFailures = Metric.counter("http_failures_total", {
  description: "requests answered 5xx because of a defect: by status and cause class",
  incremental: true
})

const messages: Record<CauseClass, string> = {
  DatabaseUnavailable: "the database is not reachable right now; retry the request (with the same Idempotency-Key)",
  BrokerUnavailable: "the message broker is not reachable right now; retry the request",
  Overloaded: "the service is overloaded right now; retry the request"
}

/** The first defect of a cause that is not a response a handler chose to die with. */
const defectOf = (cause: Cause.Cause<unknown>): Option.Option<unknown> =>
  Option.fromNullable(Cause.defects(cause).pipe((defects) => [...defects].find((d) => !HttpServerResponse.isServerResponse(d))))

const internalMessage = "an unexpected error; quote the correlation id when you report it"

/** Log (PROCESSING_ERROR) and count a request answered 5xx; the body it answers. */
const reported = (
  request: HttpServerRequest.HttpServerRequest,
  correlationId: string,
  causeClass: CauseClass | undefined,
  cause: string
) => {
  const status = causeClass !== undefined ? 503 : 500
  const tag = causeClass ?? "InternalError"
  const log = causeClass !== undefined
    ? Effect.logWarning("request failed: infrastructure unavailable")
    : Effect.logError("request failed: unexpected error")
  return log.pipe(
    Effect.annotateLogs({
      type: "PROCESSING_ERROR",
      route: `${request.method} ${request.url.split("?")[0]}`,
      correlationId,
      status,
      causeClass: tag,
      cause
    }),
    Effect.zipRight(Metric.update(httpFailures.pipe(Metric.tagged("status", String(status)), Metric.tagged("cause", tag)), 1)),
    Effect.as(
      causeClass !== undefined
        ? new ServiceUnavailable({ cause: causeClass, message: messages[causeClass], correlationId })
        : new InternalError({ message: internalMessage, correlationId })
    )
  )
}

/** A dependency other than the database or the broker cannot be asked (the payment provider): 503 with its
 * cause, logged (PROCESSING_ERROR) and counted like the others. */
export const providerUnavailable = (message: string) =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    Effect.flatMap(requestCorrelationId(request), (correlationId) =>
      Effect.logWarning("request failed: the payment provider is unavailable").pipe(
        Effect.annotateLogs({
          type: "PROCESSING_ERROR",
          route: `${request.method} ${request.url.split("?")[0]}`,
          correlationId,
          status: 503,
          causeClass: "ProviderUnavailable",
          cause: message
        }),
        Effect.zipRight(Metric.update(httpFailures.pipe(Metric.tagged("status", "503"), Metric.tagged("cause", "ProviderUnavailable")), 1)),
        Effect.zipRight(Effect.fail(new ServiceUnavailable({ cause: "ProviderUnavailable", message, correlationId })))
      )))

/**
 * At a handler: the ports' StoreUnavailable becomes the API's ServiceUnavailable (503), StoreFailed its
 * InternalError (500), each logged and counted. Other failures pass through.
 */
export const answerStoreErrors = <A, E, R>(
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, Exclude<E, StoreError> | ServiceUnavailable | InternalError, R | HttpServerRequest.HttpServerRequest> =>
  Effect.catchAll(self, (error): Effect.Effect<never, Exclude<E, StoreError> | ServiceUnavailable | InternalError, HttpServerRequest.HttpServerRequest> =>
    isStoreError(error)
      ? Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
        Effect.flatMap(requestCorrelationId(request), (correlationId) =>
          Effect.flip(reported(request, correlationId, classify(error).causeClass, error.message))))
      : Effect.fail(error as Exclude<E, StoreError>))

/**
 * The API-level middleware (HttpApiBuilder.middleware): runs each request with its correlation id, puts
 * `Retry-After` on every 503 that lacks one, and turns defects into the 503 / 500 above. Typed failures and
 * interruptions pass through untouched. A response the request made is stamped here; one the platform makes of
 * a failure after this middleware (the API's typed errors, a 404) by a pre-response handler, registered only
 * then — registering one sets a fiber ref (a copy of the fiber's refs) on every request otherwise (issue 24).
 */
export const failureMiddleware = (options: { readonly retryAfterSeconds: number }) =>
  HttpMiddleware.make((app) =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const correlationId = correlationIdOf(request)
      const source = sourceOf(request)
      if (source !== undefined) correlationIds.set(source, correlationId)
      const retryAfter = String(options.retryAfterSeconds)
      // every response, the API's typed errors included, names the correlation id
      const stamp = (response: HttpServerResponse.HttpServerResponse) =>
        response.status === 503 && response.headers["retry-after"] === undefined
          ? HttpServerResponse.setHeaders(response, { "x-request-id": correlationId, "retry-after": retryAfter })
          : HttpServerResponse.setHeader(response, "x-request-id", correlationId)
      return Effect.matchCauseEffect(app, {
        onSuccess: (response) => Effect.succeed(stamp(response)),
        onFailure: (cause) => {
          const defect = defectOf(cause)
          if (Option.isNone(defect)) {
            return Effect.zipRight(
              HttpApp.appendPreResponseHandler((_, response) => Effect.succeed(stamp(response))),
              Effect.failCause(cause)
            )
          }
          const { causeClass } = classify(defect.value)
          return Effect.map(reported(request, correlationId, causeClass, Cause.pretty(cause)), (error) =>
            stamp(HttpServerResponse.unsafeJson(
              error._tag === "ServiceUnavailable"
                ? { _tag: error._tag, cause: error.cause, message: error.message, correlationId }
                : { _tag: error._tag, message: error.message, correlationId },
              causeClass !== undefined ? { status: 503, headers: { "retry-after": retryAfter } } : { status: 500 }
            )))
        }
      })
    })
  )
