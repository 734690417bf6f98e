/** Helpers every feature's API group uses to declare its endpoints the same way. */
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"

/** An operation's summary and description in the OpenAPI document. */
export const doc = (summary: string, description: string) => OpenApi.annotations({ summary, description })

/** Query parameters are as strict as bodies: an unknown one (`?foo=`, `limit[]=`) is a 400, not ignored. */
export const strict = <A, I, R>(schema: Schema.Schema<A, I, R>): Schema.Schema<A, I, R> =>
  schema.annotations({ parseOptions: { onExcessProperty: "error" } })

/** For endpoints that take no query parameters at all. */
export const NoParams = Schema.Record({ key: Schema.String, value: Schema.Never }).annotations({
  description: "no query parameters"
})

/** Text PostgreSQL can store: `text` and `jsonb` refuse a NUL, and a lone surrogate has no UTF-8. Refused as a
 * 400 where the request is read, never a 500 at the write. */
export const StorableText = (field: string) =>
  Schema.String.pipe(Schema.filter((s) => !/\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s), {
    message: () => `${field} must be text without NUL characters or lone surrogates`
  }))
