/**
 * Admin credentials at startup (issue 12 item 4): with NODE_ENV=production the api role refuses to start
 * without an ADMIN_TOKEN of its own, before it touches anything; in development the default token is
 * allowed with a warning.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Logger } from "effect"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { checkAdminToken } from "../src/Config.js"

const main = fileURLToPath(new URL("../src/main.ts", import.meta.url))

/** The real program, with a database URL nothing listens on: a refusal must come before any connection. */
const start = (role: string, env: Record<string, string>) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const { ADMIN_TOKEN: _, NODE_ENV: __, ...inherited } = process.env
    const child = spawn(process.execPath, ["--import", "tsx", main, role], {
      env: { ...inherited, DATABASE_URL: "postgres://postgres@127.0.0.1:1/nowhere", LOG_LEVEL: "Info", ...env }
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (c) => stdout += c)
    child.stderr.on("data", (c) => stderr += c)
    const timer = setTimeout(() => child.kill("SIGKILL"), 170_000)
    child.on("close", (status) => {
      clearTimeout(timer)
      resolve({ status, stdout, stderr })
    })
  })

describe("admin token at startup", () => {
  it("production without a token of its own (none; the development one): the program refuses to start, before any connection", async () => {
    const cases = [
      ["api", { ADMIN_TOKEN: "dev-admin-token" }],
      ["all", {}]
    ] as const
    // the spawns run side by side: each is a cold tsx start of the whole program
    const runs = await Promise.all(cases.map(([role, env]) => start(role, { NODE_ENV: "production", ...env })))
    for (const run of runs) {
      assert.notStrictEqual(run.status, 0, run.stdout + run.stderr)
      const refusal = run.stdout.split("\n").filter((l) => l.includes("STARTUP_REFUSED"))
      assert.strictEqual(refusal.length, 1, run.stdout + run.stderr)
      assert.match(JSON.parse(refusal[0]!).msg, /set ADMIN_TOKEN/)
      assert.notInclude(run.stdout, "\"STARTUP\"")
    }
  }, 200_000)

  const check = (env: Record<string, string>) =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const logger = Logger.make(({ annotations, message }) => {
        lines.push(`${String(message)} ${JSON.stringify(Object.fromEntries(annotations))}`)
      })
      const exit = yield* checkAdminToken.pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))),
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Effect.exit
      )
      return { exit, lines }
    })

  it.effect("development with the default token: starts, with a warning", () =>
    Effect.gen(function*() {
      const { exit, lines } = yield* check({})
      assert.isTrue(Exit.isSuccess(exit))
      assert.strictEqual(lines.length, 1)
      assert.include(lines[0], "STARTUP_WARNING")
    }))

  it.effect("production with an empty ADMIN_TOKEN: refused", () =>
    Effect.gen(function*() {
      const { exit, lines } = yield* check({ NODE_ENV: "production", ADMIN_TOKEN: "" })
      assert.isTrue(Exit.isFailure(exit))
      assert.include(lines[0], "STARTUP_REFUSED")
    }))

  it.effect("production with a token of its own: starts, no warning", () =>
    Effect.gen(function*() {
      const { exit, lines } = yield* check({ NODE_ENV: "production", ADMIN_TOKEN: "s3cret-token" })
      assert.isTrue(Exit.isSuccess(exit))
      assert.deepStrictEqual(lines, [])
    }))
})
