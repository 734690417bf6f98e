/**
 * Reading a `node --cpu-prof` profile: self time summed by where the code lives (our modules, effect, kafkajs,
 * pg, node internals, GC), by file and by function, optionally over a window of the process's life only (the
 * profile's sample times and `process.hrtime` in another process are the same monotonic clock on Linux, in µs).
 */
import { readFileSync } from "node:fs"

/** Where a profile node's code lives, for the summary. */
export const category = (url: string, name: string): string => {
  if (name === "(garbage collector)") return "gc"
  if (name === "(idle)" || name === "(program)" || name === "(root)") return name
  if (url === "") return "native/builtin"
  if (url.startsWith("node:")) return "node internals"
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (m) return m[1]!
  const own = /\/dist\/(.*)$/.exec(url)
  if (own) return `ours: ${own[1]!.split("/")[0]}`
  return url
}

/** The file a frame's code is in: `effect/dist/esm/internal/fiberRuntime.js`, `dist/webhooks/Dispatcher.js`. */
const fileOf = (url: string, name: string): string => {
  const cat = category(url, name)
  if (url === "" || url.startsWith("node:")) return cat === "node internals" ? url : cat
  return url.replace(/.*node_modules\//, "").replace(/.*\/dist\//, "dist/")
}

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
}

/** A microsecond of the monotonic clock the profiler stamps its samples with (`process.hrtime` here). */
export const monotonicMicros = () => Number(process.hrtime.bigint() / 1000n)

/**
 * Self time of a profile's samples (between `fromUs` and `toUs` on the monotonic clock when given), idle left
 * out: shares by category, by file and by function, and the CPU milliseconds sampled.
 */
export const summarizeProfile = (file: string, window?: { readonly fromUs: number; readonly toUs: number }) => {
  const profile = JSON.parse(readFileSync(file, "utf8")) as {
    nodes: Array<ProfileNode>
    startTime: number
    samples: Array<number>
    timeDeltas: Array<number>
  }
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const byCategory = new Map<string, number>()
  const byFile = new Map<string, number>()
  const byFunction = new Map<string, number>()
  let total = 0
  let at = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0
    at += dt
    if (window && (at < window.fromUs || at > window.toUs)) continue
    const node = byId.get(profile.samples[i]!)!
    const { functionName, lineNumber, url } = node.callFrame
    const cat = category(url, functionName)
    if (cat === "(idle)") continue
    total += dt
    byCategory.set(cat, (byCategory.get(cat) ?? 0) + dt)
    const where = fileOf(url, functionName)
    byFile.set(where, (byFile.get(where) ?? 0) + dt)
    const fn = `${functionName || "(anonymous)"} ${url.replace(/.*node_modules\//, "").replace(/.*\/dist\//, "dist/")}:${lineNumber}`
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + dt)
  }
  const top = (m: Map<string, number>, n: number) =>
    [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `${(100 * v / total).toFixed(1).padStart(5)} %  ${k}`)
  return { sampledMs: total / 1000, categories: top(byCategory, 25), files: top(byFile, 25), functions: top(byFunction, 40) }
}
