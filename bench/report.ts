/**
 * The report of `npm run bench`: the targets table (each target, its measured value, met or not) and the
 * results written to bench/results/bench.json, bench/results/latency.svg and bench/results/bench.md (also
 * printed) — a partial run's to files named after its time (bench/run.ts). Nothing here asserts a speed.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { latencyChart } from "./lib/chart.js"
import { here, type Settings } from "./lib/common.js"
import { type HttpScenarioResult, maxSustained, type StepReport } from "./lib/ladder.js"
import type { summarize } from "./lib/loadgen.js"
import type { PipelineResult } from "./scenarios/pipeline.js"
import type { RebuildResult } from "./scenarios/rebuild.js"
import type { WatchersResult } from "./scenarios/watchers.js"
import type { WebhookRunResult, WebhooksResult } from "./scenarios/webhooks.js"
import type { PgbenchResult } from "./scenarios/yardsticks.js"

export interface Machine {
  readonly cpus: number
  readonly cpuModel: string
  readonly memoryGiB: number
  readonly node: string
  readonly postgres: string | undefined
}

/** What each scenario measured; undefined for those BENCH_SCENARIOS left out. */
export interface Results {
  readonly noop: HttpScenarioResult | undefined
  readonly express: HttpScenarioResult | undefined
  readonly pgbench: PgbenchResult | undefined
  readonly api: HttpScenarioResult | undefined
  readonly apiNode26: HttpScenarioResult | undefined
  readonly apiPrevious: HttpScenarioResult | undefined
  readonly ours: PipelineResult | undefined
  readonly split: PipelineResult | undefined
  readonly scale: PipelineResult | undefined
  readonly previous: PipelineResult | undefined
  readonly watchers: WatchersResult | undefined
  readonly webhooks: WebhooksResult | undefined
  readonly rebuild: RebuildResult | undefined
}

const fmt = (n: number | undefined, digits = 1) => (n === undefined || !Number.isFinite(n) ? "–" : n.toLocaleString("en", { maximumFractionDigits: digits }))

/** Writes bench/results/`name`.json, `name`.md and the latency chart (latency.svg for the full run's "bench",
 * else `name`-latency.svg), and prints the markdown. `apiBaselineRef` and `baselineRef` are the commits
 * api-previous and previous measured. */
export const writeReport = (
  settings: Settings,
  machine: Machine,
  { apiBaselineRef, baselineRef, name }: { readonly apiBaselineRef: string; readonly baselineRef: string; readonly name: string },
  results: Results
) => {
  const { stepSeconds, concurrency, providerLatencyMs } = settings
  const { noop, express, pgbench, api, apiNode26, apiPrevious, ours, split, scale, previous, watchers, webhooks, rebuild } = results
  const oursMax = ours && maxSustained(ours.steps)
  const apiMax = api && maxSustained(api.steps)
  const noopMax = noop && maxSustained(noop.steps)
  const expressMax = express && maxSustained(express.steps)
  const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b ? a / b : undefined)
  const seventy = ours?.atSeventyPercent?.pipeline
  const appCpu = (st: StepReport | undefined) => st && (st.cpuSecondsPerOrder["app (all roles)"] ?? 0) * 1000
  const serverCpu = (st: StepReport | undefined) => st && (st.cpuSecondsPerOrder["server"] ?? 0) * 1000
  const keptUp = (run: PipelineResult | undefined) => (run?.steps ?? []).filter((st) => st.sustained && st.pipeline?.keptUp)
  /** The highest rate both runs kept up with, and each one's step there. */
  const commonTop = (a: PipelineResult | undefined, b: PipelineResult | undefined) => {
    const rates = keptUp(a).map((st) => st.offeredRate).filter((r) => keptUp(b).some((x) => x.offeredRate === r))
    const rate = rates.length === 0 ? undefined : Math.max(...rates)
    return { rate, a: keptUp(a).find((st) => st.offeredRate === rate), b: keptUp(b).find((st) => st.offeredRate === rate) }
  }
  const vsPrevious = commonTop(ours, previous)
  const scaleVsSplit = commonTop(scale, split)
  const apiVsExpress = (() => {
    const rates = (api?.steps ?? []).filter((st) => st.sustained).map((st) => st.offeredRate)
      .filter((r) => (express?.steps ?? []).some((x) => x.sustained && x.offeredRate === r))
    const rate = rates.length === 0 ? undefined : Math.max(...rates)
    return { rate, ours: api?.steps.find((st) => st.offeredRate === rate), express: express?.steps.find((st) => st.offeredRate === rate) }
  })()
  // the api role alone at (or just above) the 70% rate: the POST latency the pipeline adds to
  const seventyRate = ours?.atSeventyPercent?.offeredRate
  const apiNear = seventyRate === undefined ? undefined : [...(api?.steps ?? [])].sort((x, y) => x.offeredRate - y.offeredRate)
    .find((st) => st.offeredRate >= seventyRate)
  const issue24 = [
    {
      target: `must: app CPU per order, all roles in one process, ≤ 0.6× previous at the highest rate both keep up with (${vsPrevious.rate ?? "–"}/s)`,
      value: ratio(appCpu(vsPrevious.a), appCpu(vsPrevious.b)),
      goal: 0.6,
      unit: "×",
      lower: true
    },
    { target: "must: the split layout keeps up with ≥ the all-in-one maximum", value: ratio(split?.endToEndMax, ours?.endToEndMax), goal: 1, unit: "×" },
    {
      target: `must: scale (2 api + 2 pipeline processes) CPU per order ≤ 1.15× split's (${scaleVsSplit.rate ?? "–"}/s)`,
      value: ratio(appCpu(scaleVsSplit.a), appCpu(scaleVsSplit.b)),
      goal: 1.15,
      unit: "×",
      lower: true
    },
    {
      target: `must: POST p99 with the pipeline at 70% (${seventyRate ?? "–"}/s) ≤ 3× the api role alone's (${apiNear?.offeredRate ?? "–"}/s)`,
      value: ratio(ours?.atSeventyPercent?.latencyMs.p99, apiNear?.latencyMs.p99),
      goal: 3,
      unit: "×",
      lower: true
    },
    {
      target: `must: api role CPU per POST ≤ 1.2× Express + pg's (a) at a rate both sustain (${apiVsExpress.rate ?? "–"}/s)`,
      value: ratio(serverCpu(apiVsExpress.ours), serverCpu(apiVsExpress.express)),
      goal: 1.2,
      unit: "×",
      lower: true
    },
    { target: `goal: app CPU ≤ 2.0 ms per order (all in one, ${vsPrevious.rate ?? "–"}/s)`, value: appCpu(vsPrevious.a), goal: 2, unit: "ms", lower: true },
    { target: "goal: app CPU ≤ 0.5× the previous code", value: ratio(appCpu(vsPrevious.a), appCpu(vsPrevious.b)), goal: 0.5, unit: "×", lower: true },
    { target: "goal: split end-to-end maximum ≥ 1.3× all-in-one", value: ratio(split?.endToEndMax, ours?.endToEndMax), goal: 1.3, unit: "×" },
    { target: "goal: api sustained ≥ 1.5× Express + pg (a)", value: ratio(apiMax?.acceptedRate, expressMax?.acceptedRate), goal: 1.5, unit: "×" }
  ]
  const targets = [
    ...issue24,
    { target: "POST /orders (api role) sustained ≥ 0.7× do-nothing handler on our stack", value: ratio(apiMax?.acceptedRate, noopMax?.acceptedRate), goal: 0.7, unit: "×" },
    { target: "≥ 1,000 orders/s reaching PAID (provider 20 ms)", value: ours?.endToEndMax, goal: 1000, unit: "/s" },
    { target: "PAID orders/s ≥ 2× the previous code (same run)", value: ratio(ours?.endToEndMax, previous?.endToEndMax), goal: 2, unit: "×" },
    { target: "pickup stage (on Kafka → PaymentRequested) p50 ≤ 10 ms at 70%", value: seventy?.stagesMs.pickup.p50, goal: 10, unit: "ms", lower: true },
    {
      target: "5% transient provider errors: POST→PAID p99 of orders without error ≤ 1.2× the error-free run",
      value: ratio(ours?.withErrors?.pipeline?.postToPaidNoErrorMs.p99, seventy?.postToPaidMs.p99),
      goal: 1.2,
      unit: "×",
      lower: true
    },
    { target: "p99 POST→PAID ≤ 100 ms at 70% of the end-to-end maximum", value: seventy?.postToPaidMs.p99, goal: 100, unit: "ms", lower: true },
    { target: "relay lag p99 ≤ 20 ms (at 70%)", value: seventy?.relayLagMs.p99, goal: 20, unit: "ms", lower: true },
    { target: "rebuild ≥ 0.4× SQL-only (c)", value: rebuild?.ratioToBaseline, goal: 0.4, unit: "×" },
    { target: "all-in-one peak RSS ≤ 300 MB", value: ours?.peakRssMiB, goal: 300, unit: "MiB", lower: true },
    {
      target: `webhooks: healthy endpoint's event → delivered p99 beside a failing and a hanging one ≤ 1.2× alone (${webhooks?.control === true ? "not judged: a control run, the other two endpoints healthy; " : ""}${webhooks?.rate ?? "–"} orders/s, median of ${webhooks?.pairs.length ?? "–"} pairs: ${
        webhooks?.pairs.map((p) => p.ratio === undefined ? "–" : `${fmt(p.ratio)}×`).join(", ") ?? "–"
      }${
        !webhooks ? "" : !webhooks.alone.healthy.keptUp
          ? "; alone not kept up, so its p99 is a backlog's age, no baseline: see the webhooks table"
          : !webhooks.three.healthy.keptUp
          ? "; beside them the healthy endpoint did not keep up: the ratio is a lower bound"
          : ""
      })`,
      // against a backlog's age (it grows with the step's length) no ratio means anything: not measured then
      value: webhooks?.alone.healthy.keptUp && !webhooks.control
        ? ratio(webhooks.three.healthy.eventToDeliveredMs.p99, webhooks.alone.healthy.eventToDeliveredMs.p99)
        : undefined,
      goal: 1.2,
      unit: "×",
      lower: true
    },
    {
      target: "webhooks: notifier CPU ≤ 0.3 ms per delivered event (one endpoint)",
      value: webhooks?.alone.notifierCpuMs.perDeliveredEvent,
      goal: 0.3,
      unit: "ms",
      lower: true
    },
    {
      target: "webhooks: notifier CPU ≤ 0.3 ms per delivered event (three endpoints: per 2xx delivery, any endpoint)",
      value: webhooks?.three.notifierCpuMs.perDeliveredEvent,
      goal: 0.3,
      unit: "ms",
      lower: true
    }
  ].map((t) => ({ ...t, met: t.value === undefined ? undefined : t.lower ? t.value <= t.goal : t.value >= t.goal }))

  const report = {
    measuredAt: new Date().toISOString(),
    machine,
    stepSeconds,
    concurrency,
    providerLatencyMs,
    noop,
    express,
    pgbench,
    api,
    apiNode26,
    apiPrevious: apiPrevious && { ref: apiBaselineRef, ...apiPrevious },
    ours,
    split,
    scale,
    previous: previous && { ref: baselineRef, ...previous },
    watchers,
    webhooks,
    rebuild,
    targets
  }
  mkdirSync(`${here}/results`, { recursive: true })
  writeFileSync(`${here}/results/${name}.json`, JSON.stringify(report, null, 2) + "\n")

  const series = [
    ...(noop ? [{ name: "do-nothing (our stack)", points: noop.steps }] : []),
    ...(express ? [{ name: "Express + pg (a)", points: express.steps }] : []),
    ...(api ? [{ name: "ours, api role", points: api.steps }] : []),
    ...(ours ? [{ name: "ours (all roles)", points: ours.steps }] : [])
  ].map((s) => ({ name: s.name, points: s.points.map((p) => ({ rate: p.offeredRate, p50: p.latencyMs.p50, p99: p.latencyMs.p99 })) }))
  writeFileSync(`${here}/results/${name === "bench" ? "latency" : `${name}-latency`}.svg`, latencyChart(`POST /orders latency vs offered rate — ${machine.cpus} cores, ${machine.cpuModel}`, series))

  const lines: Array<string> = []
  lines.push(
    `Measured ${report.measuredAt.slice(0, 16).replace("T", " ")} UTC on ${machine.cpus} cores (${machine.cpuModel}), ${machine.memoryGiB} GiB, Node ${machine.node}, PostgreSQL ${machine.postgres}; ${stepSeconds} s per step, open loop.`,
    "",
    "| POST /orders, max sustained | accepted/s | p50 ms | p90 ms | p99 ms | max ms | CPU ms/order (server · PostgreSQL) |",
    "| --- | --- | --- | --- | --- | --- | --- |"
  )
  const row = (name: string, s: StepReport | undefined, serverKey: string) =>
    s && lines.push(
      `| ${name} | ${fmt(s.acceptedRate, 0)} | ${fmt(s.latencyMs.p50, 2)} | ${fmt(s.latencyMs.p90, 2)} | ${fmt(s.latencyMs.p99, 2)} | ${fmt(s.latencyMs.max, 1)} | ${
        fmt((s.cpuSecondsPerOrder[serverKey] ?? 0) * 1000, 3)
      } · ${fmt((s.cpuSecondsPerOrder["postgresql"] ?? 0) * 1000, 3)} |`
    )
  row("do-nothing handler, our HTTP stack", noopMax, "server")
  row("(a) Express + pg, seed transaction", expressMax, "server")
  if (pgbench) lines.push(`| (b) pgbench, seed transaction, ${pgbench.clients} clients (closed loop) | ${fmt(pgbench.tps, 0)} | – | – | – | – | – |`)
  row("**ours**, api role alone (outbox not consumed)", apiMax, "server")
  row("ours, api role alone, on Node 26 (same build)", apiNode26 && maxSustained(apiNode26.steps), "server")
  const apiPreviousMax = apiPrevious && maxSustained(apiPrevious.steps)
  row(`previous code (${apiBaselineRef}), api role alone`, apiPreviousMax, "server")
  row("**ours**, all roles in one process, pipeline running", oursMax, "app (all roles)")
  const pipelines = [
    { label: "ours, all roles in one process", run: ours },
    { label: "ours, api | relay,worker,projector (two processes)", run: split },
    { label: "ours, api ×2 | relay,worker,projector ×2 (scale: four processes)", run: scale },
    { label: `previous code (${baselineRef}), all roles in one process`, run: previous }
  ]
  for (const { label, run } of pipelines) {
    if (!run) continue
    lines.push(
      "",
      `| ${label}, end to end (provider 20 ms) | offered/s | accepted/s | PAID/s | POST→PAID p50 / p99 / max ms | relay lag p50 / p99 ms | consumer lag max (msgs) | CPU ms/order app · PG · Kafka · provider · load gen |`,
      "| --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    const e2e = (label: string, s: StepReport) =>
      lines.push(
        `| ${label} | ${s.offeredRate} | ${fmt(s.acceptedRate, 0)} | ${fmt(s.pipeline?.paidPerSecond, 0)} | ${fmt(s.pipeline?.postToPaidMs.p50)} / ${
          fmt(s.pipeline?.postToPaidMs.p99)
        } / ${fmt(s.pipeline?.postToPaidMs.max)} | ${fmt(s.pipeline?.relayLagMs.p50)} / ${fmt(s.pipeline?.relayLagMs.p99)} | ${
          fmt(s.pipeline?.consumerLagMessages.max, 0)
        } | ${["app (all roles)", "postgresql", "kafka", "provider simulator", "load generator"].map((k) => fmt((s.cpuSecondsPerOrder[k] ?? 0) * 1000, 2)).join(" · ")} |`
      )
    for (const s of run.steps) e2e(`step${s.sustained && s.pipeline?.keptUp ? "" : " (not kept up)"}`, s)
    if (run.atSeventyPercent) e2e("**70% of end-to-end max**", run.atSeventyPercent)
    if (run.withErrors) e2e("70%, 5% transient provider errors", run.withErrors)
    lines.push(
      "",
      "| POST→PAID by stage, from the events' timestamps | relay: placed → on Kafka | pickup: on Kafka → PaymentRequested | charge + record: → OrderPaid |",
      "| --- | --- | --- | --- |"
    )
    const stagesRow = (label: string, st: StepReport) => {
      const g = st.pipeline?.stagesMs
      if (!g) return
      const cell = (x: ReturnType<typeof summarize>) => `${fmt(x.p50)} / ${fmt(x.p99)}`
      lines.push(`| ${label} (p50 / p99 ms) | ${cell(g.relay)} | ${cell(g.pickup)} | ${cell(g.charge)} |`)
    }
    for (const st of run.steps) stagesRow(`${st.offeredRate}/s`, st)
    if (run.atSeventyPercent) stagesRow(`**${run.atSeventyPercent.offeredRate}/s (70%)**`, run.atSeventyPercent)
    if (run.withErrors) stagesRow(`${run.withErrors.offeredRate}/s, 5% errors`, run.withErrors)
    const errors = run.withErrors?.pipeline
    if (errors) {
      lines.push(
        "",
        `With 5% transient provider errors at ${run.withErrors!.offeredRate}/s: ${errors.ordersWithProviderError} orders met an error; POST→PAID p99 of the others ${
          fmt(errors.postToPaidNoErrorMs.p99)
        } ms (error-free run: ${fmt(run.atSeventyPercent?.pipeline?.postToPaidMs.p99)} ms), of all ${fmt(errors.postToPaidMs.p99)} ms.`
      )
    }
    lines.push("", `Peak RSS of the app's largest process: ${fmt(run.peakRssMiB, 0)} MiB.`)
  }
  if (api && apiPrevious) {
    // CPU per order depends on the rate: compare step by step, at the rates both ran
    const cpu = (s: StepReport) => (s.cpuSecondsPerOrder["server"] ?? 0) * 1000
    const pairs = api.steps.flatMap((s) => {
      const prev = apiPrevious!.steps.find((p) => p.offeredRate === s.offeredRate)
      return prev ? [`${s.offeredRate}/s${s.sustained && prev.sustained ? "" : " (not sustained by both)"}: ours ${fmt(cpu(s), 3)} ms, previous ${fmt(cpu(prev), 3)} ms (${fmt(cpu(s) / cpu(prev), 2)}×)`] : []
    })
    if (pairs.length > 0) lines.push("", `api role CPU per order, ours vs the previous code (${apiBaselineRef}), same rates: ${pairs.join("; ")}.`)
  }
  if (api && apiNode26) {
    const pairs = api.steps.flatMap((st) => {
      const other = apiNode26.steps.find((x) => x.offeredRate === st.offeredRate)
      return other ? [`${st.offeredRate}/s: Node ${machine.node} ${fmt(serverCpu(st), 3)} ms, Node 26 ${fmt(serverCpu(other), 3)} ms`] : []
    })
    if (pairs.length > 0) lines.push("", `api role CPU per POST on both Node lines, same build, same rates: ${pairs.join("; ")}.`)
  }
  if (watchers) {
    const m = watchers.apiMemory
    lines.push(
      "",
      `| ${watchers.watchers} concurrent watchers (GET /orders/:id/watch) on the api role | RSS MiB | V8 heap used MiB |`,
      "| --- | --- | --- |",
      `| orders placed, no watcher | ${fmt(m.before.rssMiB)} | ${fmt(m.before.heapUsedMiB)} |`,
      `| ${watchers.connected} watchers connected (in ${fmt(watchers.connectSeconds)} s) | ${fmt(m.during.rssMiB)} | ${fmt(m.during.heapUsedMiB)} |`,
      `| per watcher (KiB) | ${fmt(watchers.perWatcherKiB.rss)} | ${fmt(watchers.perWatcherKiB.heapUsed)} |`,
      `| after every stream ended | ${fmt(m.after.rssMiB)} | ${fmt(m.after.heapUsedMiB)} |`,
      "",
      `${watchers.sawPaid} of ${watchers.watchers} watchers saw their order's OrderPaid and the end of the stream, ${fmt(watchers.paidSeconds)} s after the pipeline started; one watcher beyond WATCH_MAX_CONNECTIONS got ${watchers.beyondLimitStatus}. Peak RSS of the api role: ${fmt(watchers.peakRssMiB, 0)} MiB.`
    )
  }
  if (webhooks) {
    const runs: ReadonlyArray<readonly [string, WebhookRunResult]> = [["alone: one healthy endpoint", webhooks.alone], [webhooks.control ? "three (control): three healthy endpoints" : "three: healthy + failing 20 % + hanging", webhooks.three]]
    lines.push(
      "",
      `| webhooks at ${webhooks.rate} orders/s (all roles + notifier apart + receiver)${webhooks.analyzed ? "" : ", webhook tables without statistics"}${webhooks.profiled ? " — profiled: CPU includes the profiler's cost" : ""} | healthy deliveries/s | healthy event → delivered p50 / p99 / max ms | notifier CPU ms per delivered event · per order · per attempt | CPU ms/order app · notifier · receiver · PG · Kafka | POSTs accepted/s · p99 ms |`,
      "| --- | --- | --- | --- | --- | --- |"
    )
    for (const [label, r] of runs) {
      const h = r.healthy
      lines.push(
        `| ${label}${h.keptUp ? "" : " (not kept up)"} | ${fmt(h.deliveriesPerSecond, 0)} (${h.delivered} of ${h.expected}) | ${fmt(h.eventToDeliveredMs.p50)} / ${fmt(h.eventToDeliveredMs.p99)} / ${fmt(h.eventToDeliveredMs.max)} | ${
          fmt(r.notifierCpuMs.perDeliveredEvent, 3)
        } · ${fmt(r.notifierCpuMs.perOrder, 3)} · ${fmt(r.notifierCpuMs.perAttempt, 3)} | ${
          ["app (all roles)", "notifier", "webhook receiver", "postgresql", "kafka"].map((k) => fmt(r.cpuMsPerOrder[k], 2)).join(" · ")
        } | ${fmt(r.post.acceptedRate, 0)} · ${fmt(r.post.latencyMs.p99)} |`
      )
    }
    lines.push(
      "",
      "| healthy endpoint, event → delivered by stage (p50 / p99 ms) | consume: event → delivery row | queue: row → claimed | send: claimed → at the receiver | settle: → marked delivered |",
      "| --- | --- | --- | --- | --- |"
    )
    for (const [label, r] of runs) {
      const g = r.healthy.stagesMs
      const cell = (x: ReturnType<typeof summarize>) => `${fmt(x.p50)} / ${fmt(x.p99)}`
      lines.push(`| ${label} | ${cell(g.consume)} | ${cell(g.queue)} | ${cell(g.send)} | ${cell(g.settle)} |`)
    }
    const failing = webhooks.three.endpointsDetail.failing
    const hanging = webhooks.three.endpointsDetail.hanging
    if (failing && hanging) {
      lines.push(
        "",
        `Three endpoints${webhooks.control ? " (control run: the ones named failing and hanging answered as the healthy one)" : ""}, over the ${fmt(webhooks.three.windowSeconds)} s window: the failing endpoint was sent ${failing.window.attempts} requests, ${failing.window.errors} answered 500, ${failing.window.retries} of them retries; of the step's orders' ${failing.stepOrders.deliveries} deliveries to it ${failing.stepOrders.delivered} were delivered and ${failing.stepOrders.pending} pending at the window's end. The hanging endpoint was sent ${hanging.window.attempts} requests (never answered); ${hanging.backlog.pending} deliveries pending for it at the window's end (${hanging.backlog.due} of them due). Healthy deliveries drained ${fmt(webhooks.alone.healthy.drainSeconds)} s (alone) and ${fmt(webhooks.three.healthy.drainSeconds)} s (three) after the step's last POST was answered; notifier peak RSS ${fmt(webhooks.alone.notifierPeakRssMiB, 0)} / ${fmt(webhooks.three.notifierPeakRssMiB, 0)} MiB.`
      )
    }
    for (const [label, r] of runs) {
      if (!r.profile) continue
      lines.push(
        "",
        `Notifier profile over the measured window (${label}; ${fmt(r.profile.sampledMs, 0)} ms sampled, self time):`,
        "",
        "```",
        "-- by where the code lives",
        ...r.profile.categories.slice(0, 12),
        "-- by file",
        ...r.profile.files.slice(0, 15),
        "-- top functions",
        ...r.profile.functions.slice(0, 20),
        "```"
      )
    }
  }
  if (rebuild) {
    lines.push("", `Rebuild of ${rebuild.events.toLocaleString("en")} events: ours ${fmt(rebuild.ours.eventsPerSecond, 0)} events/s, SQL-only (c) ${fmt(rebuild.sqlOnlyBaseline.eventsPerSecond, 0)} events/s.`)
  }
  lines.push("", "| target | measured | met |", "| --- | --- | --- |")
  for (const t of targets) lines.push(`| ${t.target} | ${t.value === undefined ? "not measured" : `${fmt(t.value, 2)} ${t.unit}`} | ${t.met === undefined ? "–" : t.met ? "yes" : "**no**"} |`)
  const markdown = lines.join("\n") + "\n"
  writeFileSync(`${here}/results/${name}.md`, markdown)
  console.log(markdown)
}
