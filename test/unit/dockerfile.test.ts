/**
 * The image's rules, read from the Dockerfile and .dockerignore (no Docker engine on our machines, so the
 * image itself is never built here): multi-stage; every base image pinned to an exact version, Node the
 * release CI tests on (scripts/node.sh); the runtime stage carries dist/, the production dependencies,
 * package.json and migrations/ only, runs as an unprivileged user, has a HEALTHCHECK, stops on SIGTERM and
 * runs `node dist/main.js` with the role as CMD; the build context leaves out node_modules, .git and the like.
 */
import { assert, describe, it } from "@effect/vitest"
import { readdirSync, readFileSync } from "node:fs"
import { builtinModules } from "node:module"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../../", import.meta.url))
const read = (path: string) => readFileSync(join(root, path), "utf8")

interface Instruction {
  readonly keyword: string
  readonly args: string
}
interface Stage {
  readonly image: string
  readonly name: string
  readonly instructions: ReadonlyArray<Instruction>
}

/** Instructions (continuation lines joined, comments dropped), grouped into stages by FROM. */
const parseDockerfile = (text: string): ReadonlyArray<Stage> => {
  const logical = text.split("\n").filter((l) => !/^\s*#/.test(l)).join("\n").replace(/\\\n/g, " ")
  const stages: Array<{ image: string; name: string; instructions: Array<Instruction> }> = []
  for (const line of logical.split("\n").map((l) => l.trim()).filter((l) => l !== "")) {
    const [, keyword = "", args = ""] = /^(\S+)\s*(.*)$/.exec(line) ?? []
    if (keyword.toUpperCase() === "FROM") {
      const [, image = "", name = ""] = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args) ?? []
      stages.push({ image, name, instructions: [] })
    } else {
      assert.ok(stages.length > 0, `${keyword} before the first FROM`)
      stages.at(-1)!.instructions.push({ keyword: keyword.toUpperCase(), args: args.replace(/\s+/g, " ") })
    }
  }
  return stages
}

const stages = parseDockerfile(read("Dockerfile"))
const runtime = stages.at(-1)!
const all = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args)
const only = (stage: Stage, keyword: string) => {
  const found = all(stage, keyword)
  assert.strictEqual(found.length, 1, `one ${keyword} in stage ${stage.name}: ${JSON.stringify(found)}`)
  return found[0]!
}
/** The stage named `name`, or the image it names when it is no stage. */
const stageNamed = (name: string) => stages.find((s) => s.name === name)

describe("Dockerfile", () => {
  it("is multi-stage: named stages, the last one the runtime, built from the others", () => {
    assert.isAtLeast(stages.length, 2)
    for (const stage of stages) assert.match(stage.name, /^[a-z][a-z0-9-]*$/, `stage from ${stage.image} has a name`)
    assert.isAbove(all(runtime, "COPY").filter((c) => c.startsWith("--from=")).length, 0)
  })

  it("every base image is pinned to an exact version (x.y.z, or a digest), never latest", () => {
    for (const { image } of stages) {
      if (stageNamed(image)) continue
      assert.ok(
        /@sha256:[0-9a-f]{64}$/.test(image) || /^[\w./-]+:(v?\d+\.\d+\.\d+)(-[\w.-]+)?$/.test(image),
        `${image} is not pinned to an exact version`
      )
      assert.notInclude(image, ":latest")
    }
  })

  it("Node is the release CI runs the Node 26 tests on (scripts/node.sh)", () => {
    const pinned = /^version=(\S+)$/m.exec(read("scripts/node.sh"))?.[1]
    assert.ok(pinned)
    for (const { image } of stages.filter((s) => !stageNamed(s.image))) {
      assert.match(image, /^node:/)
      assert.strictEqual(/^node:(\d+\.\d+\.\d+)/.exec(image)?.[1], pinned, image)
    }
  })

  it("the build stage installs every dependency and compiles with npm run build", () => {
    const build = stages.find((s) => all(s, "RUN").some((r) => r.includes("npm run build")))
    assert.ok(build, "a stage runs npm run build")
    assert.ok(all(build!, "RUN").some((r) => /\bnpm ci\b/.test(r) && !r.includes("--omit=dev")))
    assert.notStrictEqual(build, runtime)
  })

  it("the runtime stage: dist/ from the build, production dependencies only, package.json and migrations/; nothing else", () => {
    const copies = all(runtime, "COPY")
    assert.notOk(copies.some((c) => /(^|\s)\.\s+\.\/?$/.test(c) || /\bsrc\b/.test(c)), `no sources: ${copies.join(" | ")}`)
    const sources = copies.map((c) => {
      const parts = c.split(" ").filter((p) => !p.startsWith("--chown") && !p.startsWith("--chmod"))
      const from = parts[0]!.startsWith("--from=") ? parts.shift()!.slice("--from=".length) : "context"
      return { from, paths: parts.slice(0, -1) }
    })
    const copied = sources.flatMap((s) => s.paths.map((p) => `${s.from}:${p.replace(/^\/app\//, "").replace(/\/$/, "")}`))
    assert.sameMembers(copied, ["context:package.json", "context:migrations", "deps:node_modules", "build:dist"])
    // node_modules come from a stage that installed the production dependencies only
    const deps = stageNamed("deps")
    assert.ok(deps)
    assert.ok(all(deps!, "RUN").some((r) => /\bnpm ci\b.*--omit=dev/.test(r)), "npm ci --omit=dev")
    assert.notOk(all(deps!, "COPY").some((c) => c.includes("--from=")), "the deps stage builds on nothing compiled")
    assert.strictEqual(all(runtime, "RUN").length, 0, "the runtime stage runs nothing at build time")
  })

  it("what dist/ imports is a production dependency (tsx, vitest … are not there at runtime)", () => {
    const pkg = JSON.parse(read("package.json")) as { dependencies: Record<string, string> }
    const sources = (dir: string): Array<string> =>
      readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? sources(`${dir}/${e.name}`) : e.name.endsWith(".ts") ? [`${dir}/${e.name}`] : [])
    const imported = new Set(sources("src").flatMap((file) =>
      [...read(file).matchAll(/(?:from|import\()\s*"([^".][^"]*)"/g)].map((m) => m[1]!)))
    for (const specifier of imported) {
      if (specifier.startsWith("node:") || builtinModules.includes(specifier)) continue
      const name = specifier.startsWith("@") ? specifier.split("/").slice(0, 2).join("/") : specifier.split("/")[0]!
      assert.ok(name in pkg.dependencies, `src imports ${specifier}, not a production dependency`)
    }
  })

  it("runs as an unprivileged user", () => {
    const user = only(runtime, "USER")
    assert.notMatch(user, /^(root|0)(:|$)/)
    assert.match(user, /^(\d+|[a-z_][a-z0-9_-]*)(:(\d+|[a-z_][a-z0-9_-]*))?$/)
  })

  it("HEALTHCHECK runs the probe of dist/ (src/healthcheck.ts), bounded", () => {
    const check = only(runtime, "HEALTHCHECK")
    assert.match(check, /--timeout=\d+s/)
    assert.match(check, /CMD \["node", ?"dist\/healthcheck\.js"\]$/)
    assert.ok(read("src/healthcheck.ts").includes("/health/ready"))
  })

  it("STOPSIGNAL SIGTERM; ENTRYPOINT node dist/main.js in exec form (node itself gets the signal, no shell between); CMD the roles, all by default", () => {
    assert.strictEqual(only(runtime, "STOPSIGNAL"), "SIGTERM")
    assert.deepStrictEqual(JSON.parse(only(runtime, "ENTRYPOINT")), ["node", "dist/main.js"])
    assert.deepStrictEqual(JSON.parse(only(runtime, "CMD")), ["all"])
  })
})

describe(".dockerignore", () => {
  const patterns = read(".dockerignore").split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"))
  /** Docker's rule, enough for these patterns: the last pattern matching the path or one of its parents wins. */
  const ignored = (path: string) => {
    const glob = (pattern: string) =>
      new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*\*\//g, "(.*/)?").replace(/\*/g, "[^/]*")}$`)
    const prefixes = path.split("/").map((_, i, parts) => parts.slice(0, i + 1).join("/"))
    let result = false
    for (const raw of patterns) {
      const negated = raw.startsWith("!")
      const pattern = negated ? raw.slice(1) : raw
      if (prefixes.some((p) => glob(pattern).test(p))) result = !negated
    }
    return result
  }

  it("leaves out node_modules, .git, dist, CI output, tests, logs and .env files", () => {
    for (const path of ["node_modules", "node_modules/effect/package.json", ".git", ".git/HEAD", "dist/main.js", ".ci/run",
      ".ci/test-results.json", "test/unit/batcher.test.ts", "property-tests", "bench", "docs", "README.md", ".env",
      "src/.env", "server.log", "src/node_modules/x", "docker-compose.yml", "Dockerfile"]) {
      assert.ok(ignored(path), `${path} reaches the build context`)
    }
  })

  it("keeps what the Dockerfile copies", () => {
    for (const path of ["package.json", "package-lock.json", "tsconfig.json", "tsconfig.build.json", "src/main.ts",
      "src/healthcheck.ts", "src/domain/Order.ts", "migrations/0001_event_store.sql"]) {
      assert.notOk(ignored(path), `${path} is left out of the build context`)
    }
  })
})
