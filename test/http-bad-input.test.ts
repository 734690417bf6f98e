/** The HTTP API against the real PostgreSQL, bad input to POST /orders: a clear 4xx, and no row written anywhere. */
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { body, user } from "./support/http.js"
import { call, rawRequest, rowCounts, TestApp } from "./support/TestApp.js"

describe("HTTP API", () => {
  layer(TestApp("http_bad_input"), { excludeTestServices: true })((it) => {
    // ---- bad input: a clear 4xx, and no row written anywhere ----
    const json = { "content-type": "application/json" }
    const badRequests: ReadonlyArray<readonly [string, number, { body?: string; headers?: Record<string, string> }]> = [
      ["non-JSON body", 400, { body: "{not json", headers: json }],
      ["empty body", 400, { body: "", headers: json }],
      ["JSON null", 400, { body: "null", headers: json }],
      ["JSON array", 400, { body: "[]", headers: json }],
      ["text/plain content type", 415, { body: JSON.stringify(body), headers: { "content-type": "text/plain" } }],
      ["no content type", 415, { body: JSON.stringify(body) }],
      ["form content type", 415, { body: "userId=x", headers: { "content-type": "application/x-www-form-urlencoded" } }],
      ["missing currency", 400, { body: JSON.stringify({ userId: user, amount: "1.00" }), headers: json }],
      ["missing userId", 400, { body: JSON.stringify({ amount: "1.00", currency: "EUR" }), headers: json }],
      ["unknown field state", 400, { body: JSON.stringify({ ...body, state: "PAID" }), headers: json }],
      ["unknown field version", 400, { body: JSON.stringify({ ...body, version: 7 }), headers: json }],
      ["__proto__ field", 400, { body: `{"userId":"${user}","amount":"1.00","currency":"EUR","__proto__":{"x":1}}`, headers: json }],
      ["amount as a JSON number", 400, { body: JSON.stringify({ ...body, amount: 299.99 }), headers: json }],
      ["currency as a number", 400, { body: JSON.stringify({ ...body, currency: 978 }), headers: json }],
      ["amount 1e3", 422, { body: JSON.stringify({ ...body, amount: "1e3" }), headers: json }],
      ["amount 10.001 EUR", 422, { body: JSON.stringify({ ...body, amount: "10.001" }), headers: json }],
      ["amount 5.5 JPY", 422, { body: JSON.stringify({ ...body, amount: "5.5", currency: "JPY" }), headers: json }],
      ["amount -1", 422, { body: JSON.stringify({ ...body, amount: "-1" }), headers: json }],
      ["amount 0", 422, { body: JSON.stringify({ ...body, amount: "0" }), headers: json }],
      ["amount 1,000.00", 422, { body: JSON.stringify({ ...body, amount: "1,000.00" }), headers: json }],
      ["amount over the maximum", 422, { body: JSON.stringify({ ...body, amount: "1000000000000.00" }), headers: json }],
      ["non-UUID userId", 400, { body: JSON.stringify({ ...body, userId: "user-1" }), headers: json }],
      ["currency not ISO-4217", 422, { body: JSON.stringify({ ...body, currency: "XYZ" }), headers: json }],
      ["body over the limit, streamed in chunks", 413, { body: JSON.stringify({ ...body, pad: "x".repeat(20_000) }), headers: json }],
      ["body over the limit, declared by Content-Length", 413, {
        body: JSON.stringify({ ...body, pad: "x".repeat(20_000) }),
        headers: { ...json, "content-length": String(JSON.stringify({ ...body, pad: "x".repeat(20_000) }).length) }
      }],
      ["empty Idempotency-Key", 400, { body: JSON.stringify(body), headers: { ...json, "idempotency-key": "" } }],
      ["over-long Idempotency-Key", 400, { body: JSON.stringify(body), headers: { ...json, "idempotency-key": "k".repeat(256) } }]
    ]
    for (const [name, status, request] of badRequests) {
      it.effect(`bad input: ${name} → ${status}, nothing written`, () =>
        Effect.gen(function*() {
          const before = yield* rowCounts
          const reply = yield* call("POST", "/orders", request)
          assert.strictEqual(reply.status, status, JSON.stringify(reply.body))
          assert.isString(reply.body._tag)
          assert.deepStrictEqual(yield* rowCounts, before)
        }))
    }

    it.effect("bad input: a non-printable Idempotency-Key → 400, nothing written", () =>
      Effect.gen(function*() {
        const before = yield* rowCounts
        for (const key of ["abc\x7fdef", "clé", "tab\tkey"]) {
          const payload = JSON.stringify(body)
          const reply = yield* rawRequest(
            `POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nIdempotency-Key: ${key}\r\n` +
              `Content-Length: ${payload.length}\r\nConnection: close\r\n\r\n${payload}`
          )
          assert.match(reply, /^HTTP\/1\.1 400/, JSON.stringify(key))
        }
        assert.deepStrictEqual(yield* rowCounts, before)
      }))
  })
})
