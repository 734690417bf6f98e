/**
 * The HTTP API as a hostile client uses it (issue 12): deep JSON, odd charsets and bytes, unknown query
 * parameters, slow and incomplete requests. Each gets its 4xx with a JSON body, and nothing is written.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { connect } from "node:net"
import { baseUrl, call, rowCounts, TestApp } from "./support/TestApp.js"

const user = "8f0e2d0a-3f5e-4a7b-9c1d-2e3f4a5b6c7d"
const body = { userId: user, amount: "299.99", currency: "EUR" }
const json = { "content-type": "application/json" }

const deep = (n: number, open = "[", close = "]") => open.repeat(n) + close.repeat(n)

/** Send `chunks` (the rest held back) on a raw connection; what the server answered before it closed. */
const holdOpen = (head: string, opts: { timeoutMs: number }) =>
  Effect.flatMap(baseUrl, (base) =>
    Effect.async<{ text: string; closed: boolean }>((resume) => {
      const url = new URL(base)
      const chunks: Array<Buffer> = []
      const socket = connect(Number(url.port), url.hostname, () => socket.write(head))
      const give = setTimeout(() => {
        socket.destroy()
        resume(Effect.succeed({ text: Buffer.concat(chunks).toString("latin1"), closed: false }))
      }, opts.timeoutMs)
      socket.on("data", (c) => chunks.push(c))
      socket.on("close", () => {
        clearTimeout(give)
        resume(Effect.succeed({ text: Buffer.concat(chunks).toString("latin1"), closed: true }))
      })
      socket.on("error", () => undefined)
    }))

const bodyOf = (raw: string) => JSON.parse(raw.slice(raw.indexOf("\r\n\r\n") + 4))

describe("HTTP API, hostile clients", () => {
  layer(TestApp("http_hostile", { BODY_TIMEOUT_MS: "1000", HEADERS_TIMEOUT_MS: "1000" }), { excludeTestServices: true })((it) => {
    const refused: ReadonlyArray<readonly [string, number, { body?: string | Buffer; headers?: Record<string, string> }]> = [
      ["arrays nested 2,187 deep as the body", 400, { body: deep(2_187), headers: json }],
      ["arrays nested 100,000 deep (within the size limit: 16 KiB)", 413, { body: deep(100_000), headers: json }],
      ["arrays nested 8,000 deep as the body", 400, { body: deep(8_000), headers: json }],
      ["arrays nested 2,187 deep as userId", 400, { body: `{"userId":${deep(2_187)},"amount":"1.00","currency":"EUR"}`, headers: json }],
      ["objects nested 2,500 deep", 400, { body: `${"{\"a\":".repeat(2_500)}1${"}".repeat(2_500)}`, headers: json }],
      ["33 levels as an unknown field", 400, { body: JSON.stringify({ ...body, x: JSON.parse(deep(33)) }), headers: json }],
      ["charset=utf-16", 415, { body: JSON.stringify(body), headers: { "content-type": "application/json; charset=utf-16" } }],
      ["charset=latin1", 415, { body: JSON.stringify(body), headers: { "content-type": "application/json;charset=latin1" } }],
      ["charset=\"iso-8859-1\"", 415, { body: JSON.stringify(body), headers: { "content-type": "application/json; charset=\"iso-8859-1\"" } }],
      ["a UTF-16 encoded body", 415, { body: Buffer.from(JSON.stringify(body), "utf16le"), headers: { "content-type": "application/json; charset=utf-16le" } }],
      ["invalid UTF-8 bytes", 400, {
        body: Buffer.concat([Buffer.from(`{"userId":"${user}","amount":"1.00","currency":"EU`), Buffer.from([0xc3, 0x28]), Buffer.from("\"}")]),
        headers: json
      }],
      ["a UTF-8 byte order mark", 400, { body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(body))]), headers: json }],
      ["application/jsonx", 415, { body: JSON.stringify(body), headers: { "content-type": "application/jsonx" } }]
    ]
    for (const [name, status, request] of refused) {
      it.effect(`POST /orders with ${name} → ${status}, a JSON error, nothing written`, () =>
        Effect.gen(function*() {
          const before = yield* rowCounts
          const reply = yield* call("POST", "/orders", request)
          assert.strictEqual(reply.status, status, JSON.stringify(reply.body).slice(0, 300))
          assert.isString(reply.body._tag)
          assert.deepStrictEqual(yield* rowCounts, before)
        }))
    }

    it.effect("charset=utf-8, in any case and quoted, is accepted", () =>
      Effect.gen(function*() {
        for (const type of ["application/json; charset=utf-8", "Application/JSON; Charset=\"UTF-8\"", "application/json;charset=utf8"]) {
          const reply = yield* call("POST", "/orders", { body: JSON.stringify(body), headers: { "content-type": type } })
          assert.strictEqual(reply.status, 201, type)
        }
      }))

    it.effect("unknown or malformed query parameters → 400 on every orders endpoint, nothing written", () =>
      Effect.gen(function*() {
        const order = (yield* call("POST", "/orders", { body: JSON.stringify(body), headers: json })).body
        const before = yield* rowCounts
        const paths = [
          ["GET", "/orders?foo=bar"],
          ["GET", "/orders?limit[]=1"],
          ["GET", "/orders?limit=1&limit=2"],
          ["GET", `/orders?userId=${encodeURIComponent(deep(2_000))}`],
          ["GET", `/orders?${"a[".repeat(500)}=1`],
          ["GET", `/orders/${order.orderId}?foo=bar`],
          ["GET", `/orders/${order.orderId}?atVersion=0`],
          ["GET", `/orders/${order.orderId}?atVersion=x`],
          ["GET", `/orders/${order.orderId}/events?foo=1`],
          ["POST", `/orders/${order.orderId}/cancel?state=PAID`],
          ["POST", `/orders?foo=bar`]
        ] as const
        for (const [method, path] of paths) {
          const reply = yield* call(method, path, method === "POST" ? { body: JSON.stringify(body), headers: json } : {})
          assert.strictEqual(reply.status, 400, `${method} ${path.slice(0, 80)}: ${JSON.stringify(reply.body)}`)
          assert.isString(reply.body._tag)
        }
        assert.deepStrictEqual(yield* rowCounts, before)
        assert.strictEqual((yield* call("GET", `/orders/${order.orderId}`)).body.state, "CREATED")
      }))

    it.effect("a body that stops arriving → 408 with a JSON body, connection closed; nothing written", () =>
      Effect.gen(function*() {
        const before = yield* rowCounts
        const payload = JSON.stringify(body)
        const reply = yield* holdOpen(
          `POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${payload.length}\r\n\r\n` +
            payload.slice(0, 10),
          { timeoutMs: 20_000 }
        )
        assert.isTrue(reply.closed, "the server closed the connection")
        assert.match(reply.text, /^HTTP\/1\.1 408/)
        assert.strictEqual(bodyOf(reply.text)._tag, "RequestTimeout")
        assert.deepStrictEqual(yield* rowCounts, before)
      }))

    it.effect("a chunked body that never ends → 408, connection closed", () =>
      Effect.gen(function*() {
        const reply = yield* holdOpen(
          `POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"use\r\n`,
          { timeoutMs: 20_000 }
        )
        assert.isTrue(reply.closed)
        assert.match(reply.text, /^HTTP\/1\.1 408/)
      }))

    it.effect("headers that never end → 408 with a JSON body, connection closed", () =>
      Effect.gen(function*() {
        const reply = yield* holdOpen(`POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n`, { timeoutMs: 20_000 })
        assert.isTrue(reply.closed)
        assert.match(reply.text, /^HTTP\/1\.1 408/)
        assert.strictEqual(bodyOf(reply.text)._tag, "RequestTimeout")
      }))

    it.effect("malformed HTTP → 400 with a JSON body", () =>
      Effect.gen(function*() {
        const reply = yield* holdOpen(`POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n`, { timeoutMs: 20_000 })
        assert.match(reply.text, /^HTTP\/1\.1 400/)
        assert.strictEqual(bodyOf(reply.text)._tag, "BadRequest")
      }))

    it.effect("every response carries the correlation id; a given X-Request-Id is kept", () =>
      Effect.gen(function*() {
        const reply = yield* call("GET", "/orders?foo=1", { headers: { "x-request-id": "req-123" } })
        assert.strictEqual(reply.headers["x-request-id"], "req-123")
        assert.isString((yield* call("GET", "/health/live")).headers["x-request-id"])
      }))
  })
})
