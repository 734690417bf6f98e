/** The per-schedule report (ok/fail per check, counts, the timeline, log excerpts) and the run's summary table. */
import { existsSync, readFileSync } from "node:fs"
import type { CheckResult } from "./checker.js"

export interface TimelineEntry {
  readonly t: number
  readonly kind: string
  readonly detail: string
}

export interface ScheduleResult {
  readonly seed: number
  readonly durationS: number
  readonly faults: ReadonlyMap<string, number>
  readonly timeline: ReadonlyArray<TimelineEntry>
  readonly checks: ReadonlyArray<CheckResult>
  readonly error: string | null
  readonly reportFile: string
  readonly replay: string
}

const fmtT = (ms: number) => `${(ms / 1000).toFixed(1).padStart(6)} s`

/** Lines of the role logs that mention any of the samples (at most `max` per sample), or the errors of the roles. */
export const logExcerpts = (logs: ReadonlyArray<{ name: string; file: string }>, samples: ReadonlyArray<string>, max = 6): Array<string> => {
  const out: Array<string> = []
  const contents = logs.filter((l) => existsSync(l.file)).map((l) => ({ name: l.name, lines: readFileSync(l.file, "utf8").split("\n") }))
  for (const s of samples.slice(0, 3)) {
    if (!s || s.length < 6) continue
    let n = 0
    for (const { name, lines } of contents) {
      for (const line of lines) {
        if (n >= max) break
        if (line.includes(s)) {
          out.push(`[${name}] ${line.slice(0, 400)}`)
          n++
        }
      }
    }
  }
  return out
}

/** The error-level lines and the last lines of the given logs. */
export const errorLines = (logs: ReadonlyArray<{ name: string; file: string }>, perLog = 4): Array<string> => {
  const out: Array<string> = []
  for (const l of logs) {
    if (!existsSync(l.file)) continue
    const lines = readFileSync(l.file, "utf8").split("\n").filter((x) => /"level":"(WARN|ERROR|FATAL)"|^[^{]/.test(x) && x.trim() !== "")
    for (const line of lines.slice(-perLog)) out.push(`[${l.name}] ${line.slice(0, 400)}`)
  }
  return out
}

export const renderSchedule = (r: ScheduleResult, excerpts: ReadonlyMap<string, ReadonlyArray<string>>): string => {
  const lines: Array<string> = []
  const failed = r.checks.filter((c) => !c.ok)
  lines.push(`# chaos schedule seed ${r.seed}: ${r.error ? "ERROR" : failed.length === 0 ? "ok" : `FAIL (${failed.length} of ${r.checks.length} checks)`}`)
  lines.push("", `replay: \`${r.replay}\``, "", `duration ${r.durationS} s; faults: ${[...r.faults].map(([k, n]) => `${k} ${n}`).join(", ") || "none"}`)
  if (r.error) lines.push("", `runner error: ${r.error}`)
  lines.push("", "| check | result | summary |", "| --- | --- | --- |")
  for (const c of r.checks) lines.push(`| ${c.name} | ${c.ok ? "ok" : "**FAIL**"} | ${c.summary.replace(/\|/g, "/")} |`)
  for (const c of failed) {
    lines.push("", `## FAIL: ${c.name}`, "", `counts: ${JSON.stringify(c.counts)}`, "", "```")
    lines.push(...c.details)
    lines.push("```")
    const ex = excerpts.get(c.name) ?? []
    if (ex.length) lines.push("", "log excerpts:", "", "```", ...ex, "```")
  }
  lines.push("", "## timeline", "", "```")
  for (const e of r.timeline) lines.push(`${fmtT(e.t)}  ${e.kind.padEnd(7)} ${e.detail}`)
  lines.push("```")
  return lines.join("\n") + "\n"
}

const WEBHOOKS_CHECK = "webhooks: every subscribed event delivered (verified) or given up, in version order per endpoint and order"

const SUMMARY_COUNTS: ReadonlyArray<[label: string, check: string, count: string]> = [
  ["orders acked", "acked orders exist", "acked"],
  ["lost", "acked orders exist", "lost"],
  ["stuck", "liveness: every order PAID, FAILED or CANCELLED", "stuck"],
  ["double charges", "charges: at most one per order, PAID ⇔ one success, none if CANCELLED", "doubleCharges"],
  ["refunds", "refunds: never above the charge, one provider refund per refund id, the log agrees with the provider", "refunds"],
  ["refund failures", "refunds: never above the charge, one provider refund per refund id, the log agrees with the provider", "refundFailures"],
  ["illegal transitions", "every transition legal", "illegal"],
  ["gaps", "streams: versions 1..n, event ids unique", "gaps"],
  ["unpublished", "every outbox row published", "unpublished"],
  ["verify diffs", "projections verify clean", "verifyDiffs"],
  ["webhook deliveries", WEBHOOKS_CHECK, "deliveries"],
  ["webhooks failed", WEBHOOKS_CHECK, "failed"],
  ["webhook duplicates", WEBHOOKS_CHECK, "duplicates"]
]

export const renderSummary = (results: ReadonlyArray<ScheduleResult>, header: string): string => {
  const lines: Array<string> = [header, ""]
  const faults = new Map<string, number>()
  for (const r of results) for (const [k, n] of r.faults) faults.set(k, (faults.get(k) ?? 0) + n)
  const total = (_label: string, check: string, count: string) =>
    results.reduce((s, r) => s + Math.max(0, r.checks.find((c) => c.name === check)?.counts[count] ?? 0), 0)
  const ok = results.filter((r) => !r.error && r.checks.every((c) => c.ok)).length
  lines.push("| schedules | ok | failed | faults injected | " + SUMMARY_COUNTS.map(([l]) => l).join(" | ") + " |")
  lines.push("| --- | --- | --- | --- | " + SUMMARY_COUNTS.map(() => "---").join(" | ") + " |")
  lines.push(`| ${results.length} | ${ok} | ${results.length - ok} | ${[...faults].sort().map(([k, n]) => `${k} ${n}`).join(", ")} | ` +
    SUMMARY_COUNTS.map((c) => total(...c)).join(" | ") + " |")
  const failing = new Map<string, Array<number>>()
  for (const r of results) {
    if (r.error) failing.set("runner error", [...(failing.get("runner error") ?? []), r.seed])
    for (const c of r.checks) if (!c.ok) failing.set(c.name, [...(failing.get(c.name) ?? []), r.seed])
  }
  if (failing.size) {
    lines.push("", "| failing check | schedules (seeds) |", "| --- | --- |")
    for (const [name, seeds] of failing) lines.push(`| ${name} | ${seeds.length}: ${seeds.slice(0, 12).join(", ")}${seeds.length > 12 ? ", …" : ""} |`)
  }
  return lines.join("\n") + "\n"
}
