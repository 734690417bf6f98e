/**
 * A webhook receiver inside a test: a real HTTP server on a free port that answers each request as the test's
 * `answer` says and records what it got (headers, the raw body, when). Signatures are verified by the test with
 * the `standardwebhooks` package, never here.
 */
import { Effect } from "effect"
import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Webhook } from "standardwebhooks"

export interface Received {
  readonly path: string
  readonly headers: IncomingHttpHeaders
  readonly body: string
  readonly at: number
  readonly json: any
}

/** What to answer: a status (and headers), or "hang" (never answer). */
export type Answer = { readonly status: number; readonly headers?: Record<string, string>; readonly drip?: boolean } | "hang"

/** `maxOpen`: the most requests open at once (a hanging answer stays open until the client gives up); `open`: now. */
export const webhookSink = (answer: (request: Received, seen: ReadonlyArray<Received>) => Answer = () => ({ status: 204 })) =>
  Effect.acquireRelease(
    Effect.async<{ readonly url: string; readonly received: Array<Received>; readonly maxOpen: () => number; readonly open: () => number; close: () => void }>((resume) => {
      const received: Array<Received> = []
      let open = 0
      let maxOpen = 0
      const hanging = new Set<ServerResponse>()
      const server = createServer((req, res) => {
        open++
        maxOpen = Math.max(maxOpen, open)
        res.on("close", () => open--)
        const chunks: Array<Buffer> = []
        req.on("data", (c: Buffer) => chunks.push(c))
        req.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8")
          let json: unknown = null
          try {
            json = JSON.parse(body)
          } catch { /* recorded as it is */ }
          const request: Received = { path: req.url ?? "", headers: req.headers, body, at: Date.now(), json }
          const a = answer(request, received)
          received.push(request)
          if (a === "hang") {
            hanging.add(res)
            return
          }
          res.writeHead(a.status, a.headers ?? {})
          if (a.drip === true) {
            // the status, then a body that never ends: a byte every 50 ms
            const timer = setInterval(() => res.write("."), 50)
            res.on("close", () => clearInterval(timer))
            hanging.add(res)
            return
          }
          res.end()
        })
      })
      server.keepAliveTimeout = 60_000
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resume(Effect.succeed({
          url: `http://127.0.0.1:${port}`,
          received,
          maxOpen: () => maxOpen,
          open: () => open,
          close: () => {
            for (const res of hanging) res.destroy()
            server.closeAllConnections()
            server.close()
          }
        }))
      })
    }),
    (sink) => Effect.sync(() => sink.close())
  )

/** Whether the request verifies with `secret` (the spec's own library). */
export const verifies = (secret: string, r: Received): boolean => {
  try {
    new Webhook(secret).verify(r.body, r.headers as Record<string, string>)
    return true
  } catch {
    return false
  }
}
