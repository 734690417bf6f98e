/**
 * The client's import graph holds no server-only package (database, broker, server runtime, telemetry):
 * scripts/client-imports.mjs loads src/client/index.ts in a fresh process and lists what was resolved.
 * `npm run check:client` runs the same check on the built dist/client/index.js.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"

const check = (module: string) =>
  spawnSync(process.execPath, ["--import", "tsx", "scripts/client-imports.mjs", module], { encoding: "utf8" })

describe("client import graph", () => {
  it("src/client/index.ts loads no pg, kafkajs, @effect/sql or server runtime", () => {
    const result = check("src/client/index.ts")
    assert.strictEqual(result.status, 0, result.stderr)
  }, 30_000)

  it("the check does catch a module that loads them", () => {
    const result = check("src/deadletter/DeadLetters.ts")
    assert.strictEqual(result.status, 1)
    assert.include(result.stderr, "node_modules/kafkajs/")
  }, 30_000)
})
