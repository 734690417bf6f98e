/** Helpers every feature's API group uses to declare its endpoints the same way. */
import { OpenApi } from "@effect/platform"
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
