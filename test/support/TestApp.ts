/** The api role (src/Roles.ts) on a fresh test database and a free port, plus helpers to call it. */
import { HttpServer } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { request as httpRequest } from "node:http"
import { connect } from "node:net"
import { processLayer } from "../../src/Roles.js"
import { onTestDatabase } from "./TestDatabase.js"
import { suiteId } from "./TestKafka.js"
import { adminToken, testInfrastructure, withTestConfig } from "./TestSystem.js"

export { adminToken }

/** The API alone (no relay, no worker) on a fresh database, with the suite's own Kafka topics; `env` sets
 * variables of docs/OPERATIONS.md "Configuration" (e.g. WATCH_POLL_MS) for this suite. */
export const TestApp = (suite: string, env: Record<string, string> = {}) => {
  const id = suiteId(suite)
  return onTestDatabase(suite, processLayer(["api"], testInfrastructure(id)).pipe(withTestConfig(id, env)))
}

export const baseUrl = Effect.map(HttpServer.HttpServer, (server) => {
  const address = server.address as HttpServer.TcpAddress
  return `http://127.0.0.1:${address.port}`
})

export interface Reply {
  readonly status: number
  readonly headers: Record<string, string | Array<string> | undefined>
  readonly body: any
}

/** An HTTP request with full control of headers and body (node:http, no fetch niceties). */
export const call = (method: string, path: string, options: { body?: string | Buffer; headers?: Record<string, string> } = {}) =>
  Effect.flatMap(baseUrl, (base) =>
    Effect.async<Reply>((resume) => {
      // agent: false — a fresh connection each time, never a keep-alive socket the server is just closing
      const req = httpRequest(`${base}${path}`, { method, headers: options.headers ?? {}, agent: false }, (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (c: Buffer) => chunks.push(c))
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString()
          let body: unknown = text
          try {
            body = JSON.parse(text)
          } catch {
            // not JSON: keep the text
          }
          resume(Effect.succeed({ status: res.statusCode ?? 0, headers: res.headers, body }))
        })
      })
      req.on("error", (e) => resume(Effect.die(e)))
      if (options.body !== undefined) req.write(options.body)
      req.end()
    }))

export const postJson = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  call("POST", path, { body: JSON.stringify(body), headers: { "content-type": "application/json", ...headers } })

/** Bytes exactly as given, for requests node:http refuses to build (e.g. control characters in a header). */
export const rawRequest = (text: string) =>
  Effect.flatMap(baseUrl, (base) =>
    Effect.async<string>((resume) => {
      const url = new URL(base)
      const socket = connect(Number(url.port), url.hostname, () => socket.end(Buffer.from(text, "latin1")))
      const chunks: Array<Buffer> = []
      socket.on("data", (c) => chunks.push(c))
      socket.on("close", () => resume(Effect.succeed(Buffer.concat(chunks).toString("latin1"))))
      socket.on("error", () => resume(Effect.succeed(Buffer.concat(chunks).toString("latin1"))))
    }))

/** Row counts of every table a request can write: "changes nothing" means these stay equal. */
export const rowCounts = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ events: number; orders: number; outbox: number; keys: number }>`
    SELECT (SELECT count(*) FROM events)::int AS events, (SELECT count(*) FROM orders)::int AS orders,
           (SELECT count(*) FROM outbox)::int AS outbox, (SELECT count(*) FROM idempotency_keys)::int AS keys`
).pipe(Effect.map((rows) => rows[0]!), Effect.orDie)
