/**
 * The errors any endpoint may answer, whatever its feature: a body that cannot be read (400, 408, 413, 415,
 * from the JSON body reader) and what the failure middleware answers for a defect (503 infrastructure, 500 bug).
 * Statuses are declared here, never in the domain. Each carries an example for the OpenAPI document.
 */
import * as HttpApiError from "@effect/platform/HttpApiError"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { Schema } from "effect"
import { type ErrorExample, errorExample } from "./ErrorExamples.js"

const { HttpApiDecodeError } = HttpApiError

export class BadRequest extends Schema.TaggedError<BadRequest>()("BadRequest", {
  message: Schema.String
}, HttpApiSchema.annotations({ status: 400 })) {}

export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", {
  message: Schema.String
}, HttpApiSchema.annotations({ status: 413 })) {}

export class UnsupportedMediaType extends Schema.TaggedError<UnsupportedMediaType>()("UnsupportedMediaType", {
  message: Schema.String
}, HttpApiSchema.annotations({ status: 415 })) {}

/** The body did not arrive within BODY_TIMEOUT_MS; the connection is closed after this answer. */
export class RequestTimeout extends Schema.TaggedError<RequestTimeout>()("RequestTimeout", {
  message: Schema.String
}, HttpApiSchema.annotations({ status: 408 })) {}

/** An infrastructure failure (database, broker, the payment provider, overload): retry after `Retry-After` seconds. */
export class ServiceUnavailable extends Schema.TaggedError<ServiceUnavailable>()("ServiceUnavailable", {
  cause: Schema.Literal("DatabaseUnavailable", "BrokerUnavailable", "ProviderUnavailable", "Overloaded"),
  message: Schema.String,
  correlationId: Schema.String
}, HttpApiSchema.annotations({ status: 503 })) {}

/** A bug: logged with the correlation id the body carries. */
export class InternalError extends Schema.TaggedError<InternalError>()("InternalError", {
  message: Schema.String,
  correlationId: Schema.String
}, HttpApiSchema.annotations({ status: 500 })) {}

const correlationId = "0f8b5a52-3c1e-4d7a-9a4e-2b1f6c0d9e17"

/** One example per error above, and for the platform's own 400 (a path, query or header that does not decode). */
export const httpErrorExamples: ReadonlyArray<ErrorExample> = [
  errorExample(BadRequest, new BadRequest({ message: "the body is not valid JSON" }), "the body cannot be read"),
  errorExample(HttpApiDecodeError, new HttpApiDecodeError({
    issues: [{ _tag: "Type", path: ["limit"], message: "Expected a number between 1 and 100, actual \"500\"" }],
    message: "limit: Expected a number between 1 and 100, actual \"500\""
  }), "a path, query or header parameter does not decode"),
  errorExample(PayloadTooLarge, new PayloadTooLarge({ message: "the body must be at most 16384 bytes" }), "body over BODY_LIMIT"),
  errorExample(UnsupportedMediaType, new UnsupportedMediaType({ message: "the body must be application/json" }), "not JSON"),
  errorExample(RequestTimeout, new RequestTimeout({ message: "the body did not arrive within 5000 ms" }), "body too slow; the connection is closed"),
  errorExample(ServiceUnavailable, new ServiceUnavailable({
    cause: "DatabaseUnavailable",
    message: "the database is not reachable right now; retry the request (with the same Idempotency-Key)",
    correlationId
  }), "infrastructure unavailable: retry after Retry-After seconds"),
  errorExample(InternalError, new InternalError({
    message: "an unexpected error; quote the correlation id when you report it",
    correlationId
  }), "a bug, logged under the correlation id")
]
