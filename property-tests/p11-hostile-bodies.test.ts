/**
 * P11 — hostile bodies over HTTP, on PostgreSQL (issue 12, invariant 11): random deep, wide and oddly encoded
 * requests to POST /orders — nested arrays and objects up to thousands deep (as the body or as a field's value),
 * random JSON, random bytes, declared charsets, content types and lengths — never get a 5xx, always get a JSON
 * error body with a `_tag`, and never write a row.
 */
import { describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { call, rowCounts, TestApp } from "../test/support/TestApp.js"
import { fc, params } from "./support.js"

const user = "8f0e2d0a-3f5e-4a7b-9c1d-2e3f4a5b6c7d"

// half shallow, half past the depth where walking the value overflowed the stack (≈ 2,000)
const depth = fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 2_000, max: 6_000 }))
const nested = fc.tuple(depth, fc.constantFrom(["[", "]"], ["{\"a\":", "}"], ["[{\"a\":", "}]"]))
  .map(([n, [open, close]]) => open!.repeat(n) + (open === "[" ? "" : "1") + close!.repeat(n))

const text = fc.oneof(
  { arbitrary: nested, weight: 4 },
  { arbitrary: nested.map((deep) => `{"userId":${deep},"amount":"1.00","currency":"EUR"}`), weight: 4 },
  { arbitrary: nested.map((deep) => `{"userId":"${user}","amount":"1.00","currency":"EUR","x":${deep}}`), weight: 4 },
  fc.json({ depthSize: "large" }),
  fc.jsonValue().map((v) => JSON.stringify({ userId: user, amount: v, currency: "EUR" })),
  fc.array(fc.constantFrom("[", "]", "{", "}", "\"", "\\", ",", ":", "1", "a", " "), { maxLength: 3_000 }).map((cs) => cs.join(""))
)

const bytes = fc.oneof(
  { arbitrary: text.map((t) => Buffer.from(t, "utf8")), weight: 6 },
  text.map((t) => Buffer.from(t, "utf16le")),
  text.map((t) => Buffer.from(t, "latin1")),
  fc.uint8Array({ maxLength: 4_000 }).map((b) => Buffer.from(b)),
  fc.tuple(text, fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([t, b]) => Buffer.concat([Buffer.from(t), Buffer.from(b)]))
)

const contentType = fc.constantFrom(
  "application/json",
  "application/json",
  "application/json",
  "application/json; charset=utf-8",
  "application/json; charset=utf-16",
  "application/json; charset=latin1",
  "application/json; charset=\"UTF-16BE\"",
  "application/json;;charset=",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x"
)

const request = fc.record({ body: bytes, contentType: fc.option(contentType, { nil: undefined, freq: 10 }) })

describe("P11 hostile bodies", () => {
  layer(TestApp("props_hostile"), { excludeTestServices: true, timeout: "120 seconds" })((it) => {
    it.effect("random deep, wide and oddly encoded bodies never yield a 5xx and never write", () =>
      Effect.gen(function*() {
        const runtime = yield* Effect.runtime<any>()
        const before = yield* rowCounts
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(request, async (r) => {
              const reply = await Effect.runPromise(
                call("POST", "/orders", { body: r.body, headers: r.contentType === undefined ? {} : { "content-type": r.contentType } }).pipe(
                  Effect.provide(runtime.context)
                )
              )
              if (reply.status < 400 || reply.status >= 500) return false
              return typeof reply.body === "object" && reply.body !== null && typeof reply.body._tag === "string"
            }),
            { ...params("postgres"), numRuns: params("postgres").numRuns * 5 }
          )
        )
        const after = yield* rowCounts
        if (JSON.stringify(after) !== JSON.stringify(before)) throw new Error(`rows written: ${JSON.stringify([before, after])}`)
      }))
  })
})
