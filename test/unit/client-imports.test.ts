/**
 * The client's import graph holds no server-only package (database, broker, server runtime, telemetry):
 * scripts/client-imports.mjs loads src/client/index.ts in a fresh process and lists what was resolved.
 * `npm run check:client` runs the same check on the built dist/client/index.js. The same script checks that the
 * server's modules never load @effect/platform's index (its unused modules' memory).
 */
import { assert, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"

const check = (module: string, forbidden?: string) =>
  spawnSync(process.execPath, ["--import", "tsx", "scripts/client-imports.mjs", module], {
    encoding: "utf8",
    env: { ...process.env, ...(forbidden === undefined ? {} : { FORBIDDEN_IMPORTS: forbidden }) }
  })

// @effect/platform's index loads every module of the package, HttpApiScalar's 6.7 MB bundle of JavaScript text
// among them (twice in the heap: the module's source and the string): ~13-16 MB more RSS per process
const platformIndex = "/node_modules/@effect/platform/dist/esm/(index|HttpApiScalar)\\.js$"

describe("client import graph", () => {
  it("src/client/index.ts loads no pg, kafkajs, @effect/sql or server runtime", () => {
    const result = check("src/client/index.ts")
    assert.strictEqual(result.status, 0, result.stderr)
  }, 30_000)

  it("the server's modules load @effect/platform module by module, never its index", () => {
    const result = check("src/Roles.ts", platformIndex)
    assert.strictEqual(result.status, 0, result.stderr)
  }, 30_000)

  it("the index check does catch a module that loads it", () => {
    const result = check("node_modules/@effect/platform/dist/esm/index.js", platformIndex)
    assert.strictEqual(result.status, 1)
    assert.include(result.stderr, "@effect/platform/dist/esm/index.js")
  }, 30_000)

  it("the check does catch a module that loads them", () => {
    const result = check("src/deadletter/DeadLetters.ts")
    assert.strictEqual(result.status, 1)
    assert.include(result.stderr, "node_modules/kafkajs/")
  }, 30_000)
})
