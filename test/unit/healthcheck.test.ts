/**
 * The image's health probe (src/healthcheck.ts, the Dockerfile's HEALTHCHECK) as Docker runs it, a process
 * whose exit code is the verdict, against local stand-ins: the ops port first, the api's PORT when nothing
 * listens on the ops port, never the next one when the ops port answers.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { fileURLToPath } from "node:url"

const probe = fileURLToPath(new URL("../../src/healthcheck.ts", import.meta.url))

const run = (env: Record<string, string>, args: ReadonlyArray<string> = []) =>
  new Promise<{ code: number; output: string }>((resolve) => {
    const { OPS_PORT: _, PORT: __, ...inherited } = process.env
    execFile(process.execPath, ["--import", "tsx", probe, ...args], { env: { ...inherited, ...env }, timeout: 20_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, output: stdout + stderr }))
  })

/** A server answering /health/ready with `status`; its port. */
const serve = (status: number) =>
  new Promise<{ server: Server; port: string }>((resolve) => {
    const server = createServer((req, res) => {
      res.writeHead(req.url === "/health/ready" ? status : 404, { "content-type": "application/json" })
      res.end(JSON.stringify({ status: status === 200 ? "ready" : "not ready" }))
    })
    server.listen(0, "127.0.0.1", () => resolve({ server, port: String((server.address() as AddressInfo).port) }))
  })

/** A port nothing listens on (bound, then closed). */
const closedPort = async () => {
  const { port, server } = await serve(200)
  await new Promise((done) => server.close(done))
  return port
}

describe("healthcheck", () => {
  it("nothing on OPS_PORT: PORT's answer decides (the api process)", async () => {
    const ops = await closedPort()
    const api = await serve(200)
    const down = await serve(503)
    try {
      const ok = await run({ OPS_PORT: ops, PORT: api.port })
      assert.strictEqual(ok.code, 0, ok.output)
      assert.include(ok.output, `127.0.0.1:${api.port}/health/ready: 200`)
      const notReady = await run({ OPS_PORT: ops, PORT: down.port })
      assert.strictEqual(notReady.code, 1, notReady.output)
    } finally {
      api.server.close()
      down.server.close()
    }
  }, 30_000)

  it("OPS_PORT answers: its answer decides, 503 is unhealthy even when PORT would say ready", async () => {
    const ops = await serve(503)
    const api = await serve(200)
    try {
      const result = await run({ OPS_PORT: ops.port, PORT: api.port })
      assert.strictEqual(result.code, 1, result.output)
      assert.notInclude(result.output, `:${api.port}/`)
    } finally {
      ops.server.close()
      api.server.close()
    }
  }, 30_000)

  it("OPS_PORT accepts but never answers (a hung process): unhealthy after the probe's 3 s, PORT not asked", async () => {
    const hung = createServer(() => {})
    await new Promise<void>((listening) => hung.listen(0, "127.0.0.1", listening))
    const api = await serve(200)
    try {
      const started = Date.now()
      const result = await run({ OPS_PORT: String((hung.address() as AddressInfo).port), PORT: api.port })
      assert.strictEqual(result.code, 1, result.output)
      assert.include(result.output, "no answer within 3000 ms")
      assert.notInclude(result.output, `:${api.port}/`)
      assert.isBelow(Date.now() - started, 15_000)
    } finally {
      hung.closeAllConnections()
      hung.close()
      api.server.close()
    }
  }, 30_000)

  it("nothing listens anywhere: unhealthy; URLs given as arguments replace the default pair", async () => {
    const none = await run({ OPS_PORT: await closedPort(), PORT: await closedPort() })
    assert.strictEqual(none.code, 1, none.output)
    assert.include(none.output, "nothing listens")
    const other = await serve(200)
    try {
      const given = await run({ OPS_PORT: await closedPort() }, [`http://127.0.0.1:${other.port}/health/ready`])
      assert.strictEqual(given.code, 0, given.output)
    } finally {
      other.server.close()
    }
  }, 30_000)
})
