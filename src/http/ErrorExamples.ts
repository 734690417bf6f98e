/**
 * An example for every error response of the OpenAPI document (issue 13). Each feature lists one example per
 * error it declares, built from a real instance of the error and encoded by its schema, so an example cannot
 * drift from the shape the API answers. The document's transform puts them on every 4xx/5xx response as
 * named media-type examples (one per error the response may carry); `errorsWithoutExample` lists what still
 * lacks one (scripts/openapi.ts fails on it, and so does test/openapi.test.ts).
 */
import { Schema } from "effect"

export interface ErrorExample {
  readonly tag: string
  readonly summary: string
  readonly value: unknown
}

export const errorExample = <A extends { readonly _tag: string }, I>(
  schema: Schema.Schema<A, I>,
  error: A,
  summary: string
): ErrorExample => ({ tag: error._tag, summary, value: Schema.encodeSync(schema)(error) })

type Json = Record<string, any>

/** The component names (= error tags) a response's JSON schema refers to: one `$ref`, or an `anyOf` of them. */
const referencedTags = (schema: Json | undefined): Array<string> => {
  if (schema === undefined) return []
  const refs: Array<Json> = Array.isArray(schema.anyOf) ? schema.anyOf : [schema]
  return refs.flatMap((s) => typeof s.$ref === "string" ? [s.$ref.slice(s.$ref.lastIndexOf("/") + 1)] : [])
}

const errorResponses = function*(spec: Json) {
  for (const [path, operations] of Object.entries<Json>(spec.paths ?? {})) {
    for (const [method, operation] of Object.entries<Json>(operations)) {
      for (const [status, response] of Object.entries<Json>(operation.responses ?? {})) {
        if (Number(status) < 400) continue
        for (const [mediaType, media] of Object.entries<Json>(response.content ?? {})) {
          yield { where: `${method.toUpperCase()} ${path} ${status} ${mediaType}`, media }
        }
      }
    }
  }
}

/** The OpenAPI transform: named examples on every error response, one per error it may carry. */
export const withErrorExamples = (examples: ReadonlyArray<ErrorExample>) => {
  const byTag = new Map(examples.map((e) => [e.tag, e]))
  return <S extends Json>(spec: S): S => {
    for (const { media } of errorResponses(spec)) {
      const named = Object.fromEntries(referencedTags(media.schema).flatMap((tag) => {
        const example = byTag.get(tag)
        return example === undefined ? [] : [[tag, { summary: example.summary, value: example.value }]]
      }))
      if (Object.keys(named).length > 0) media.examples = named
    }
    return spec
  }
}

/** Every error of every 4xx/5xx response that has no example, as `METHOD path status media-type Tag`. */
export const errorsWithoutExample = (spec: Json): Array<string> => {
  const missing: Array<string> = []
  for (const { media, where } of errorResponses(spec)) {
    const tags = referencedTags(media.schema)
    if (tags.length === 0) missing.push(`${where} (no error schema)`)
    for (const tag of tags) if (media.examples?.[tag] === undefined) missing.push(`${where} ${tag}`)
  }
  return missing
}
