/**
 * The errors any endpoint may answer, whatever its feature: a body that cannot be read (400, 408, 413, 415,
 * from the JSON body reader) and what the failure middleware answers for a defect (503 infrastructure, 500 bug).
 * Statuses are declared here, never in the domain. Each carries an example for the OpenAPI document.
 */
import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

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

/** An infrastructure failure (database, broker, overload): retry after `Retry-After` seconds. */
export class ServiceUnavailable extends Schema.TaggedError<ServiceUnavailable>()("ServiceUnavailable", {
  cause: Schema.Literal("DatabaseUnavailable", "BrokerUnavailable", "Overloaded"),
  message: Schema.String,
  correlationId: Schema.String
}, HttpApiSchema.annotations({ status: 503 })) {}

/** A bug: logged with the correlation id the body carries. */
export class InternalError extends Schema.TaggedError<InternalError>()("InternalError", {
  message: Schema.String,
  correlationId: Schema.String
}, HttpApiSchema.annotations({ status: 500 })) {}
