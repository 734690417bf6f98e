/**
 * The load ladder: one open-loop step at a rate (its CPU per order per process, whether it was sustained),
 * the steps through the rates until the server stops keeping up, and an HTTP scenario with nothing behind
 * its POST /orders to wait for. How a step is judged is in bench/run.ts's header.
 */
import { log, orderBody, round, type Settings, sleep } from "./common.js"
import { runStep, type StepResult, type summarize } from "./loadgen.js"
import { type CpuProbe, sampleCpu, type Server, startServer, stopServer } from "./processes.js"
import { peakRssMiB, treeCpuSeconds } from "./procstat.js"

export interface StepReport extends Omit<StepResult, "bodies"> {
  readonly sustained: boolean
  readonly cpuSecondsPerOrder: Readonly<Record<string, number>>
  readonly pipeline?: PipelineReport
}

export interface PipelineReport {
  readonly paid: number
  readonly paidPerSecond: number
  readonly keptUp: boolean
  readonly postToPaidMs: ReturnType<typeof summarize>
  /** POST→PAID of the orders the provider never answered an error (head-of-line blocking shows here). */
  readonly postToPaidNoErrorMs: ReturnType<typeof summarize>
  readonly ordersWithProviderError: number
  readonly relayLagMs: ReturnType<typeof summarize>
  readonly consumerLagMessages: { readonly max: number; readonly p99: number }
  readonly drainSeconds: number
  /** POST→PAID cut at the events' own timestamps: OrderPlaced committed → on Kafka (relay) → PaymentRequested
   * appended (consumer: fetch, inbox, StartPayment) → OrderPaid appended (charge, record). */
  readonly stagesMs: {
    readonly relay: ReturnType<typeof summarize>
    readonly pickup: ReturnType<typeof summarize>
    readonly charge: ReturnType<typeof summarize>
  }
}

export const isSustained = (r: StepResult) =>
  r.errors === 0 && r.acceptedRate >= 0.97 * r.offeredRate && r.latencyMs.p99 <= 500

export const stepLine = (name: string, r: StepReport) =>
  log(
    `${name} @${r.offeredRate}/s: accepted ${Math.round(r.acceptedRate)}/s, p50 ${round(r.latencyMs.p50)} p99 ${round(r.latencyMs.p99)} max ${
      round(r.latencyMs.max)
    } ms, errors ${r.errors}${r.pipeline ? `, PAID ${Math.round(r.pipeline.paidPerSecond)}/s, POST→PAID p99 ${round(r.pipeline.postToPaidMs.p99)} ms, relay p99 ${round(r.pipeline.relayLagMs.p99)} ms` : ""}${
      r.sustained ? "" : " — not sustained"
    }`
  )

/** Steps through the rates; after the first unsustained step, one more (the knee), then stop. */
export type AfterStep = (result: StepResult) => Promise<PipelineReport>

/**
 * The load of one step, shared evenly between the scenario's API processes. With several, the steps' results
 * are added up; latency percentiles are the worst process's (conservative: each process's own is exact).
 */
const load = async (server: Server, rate: number, seconds: number, collect: boolean): Promise<StepResult> => {
  const urls = server.urls ?? [server.url]
  const results = await Promise.all(urls.map((url) => runStep({ url: `${url}/orders`, rate: rate / urls.length, seconds, body: orderBody, collect })))
  if (results.length === 1) return results[0]!
  const statuses: Record<string, number> = {}
  for (const r of results) for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + v
  const worst = (pick: (r: StepResult) => number) => Math.max(...results.map(pick))
  return {
    offeredRate: rate,
    seconds,
    sent: results.reduce((n, r) => n + r.sent, 0),
    ok: results.reduce((n, r) => n + r.ok, 0),
    errors: results.reduce((n, r) => n + r.errors, 0),
    acceptedRate: results.reduce((n, r) => n + r.acceptedRate, 0),
    latencyMs: {
      p50: worst((r) => r.latencyMs.p50),
      p90: worst((r) => r.latencyMs.p90),
      p99: worst((r) => r.latencyMs.p99),
      max: worst((r) => r.latencyMs.max),
      mean: results.reduce((n, r) => n + r.latencyMs.mean * r.ok, 0) / Math.max(1, results.reduce((n, r) => n + r.ok, 0))
    },
    bodies: results.flatMap((r) => r.bodies),
    statuses
  }
}

/** One step at `rate`: the load, then `afterStep` (the pipeline's drain), with the CPU each process spent. */
export const measureStep = async (settings: Settings, server: Server, probes: ReadonlyArray<CpuProbe>, rate: number, afterStep?: AfterStep) => {
  const before = sampleCpu(probes)
  const result = await load(server, rate, settings.stepSeconds, afterStep !== undefined)
  const pipeline = afterStep ? await afterStep(result) : undefined
  const after = sampleCpu(probes)
  const cpuSecondsPerOrder = Object.fromEntries(
    probes.map((p) => [p.name, result.ok > 0 ? (after[p.name]! - before[p.name]!) / result.ok : 0])
  )
  const { bodies: _, ...rest } = result
  const report: StepReport = { ...rest, sustained: isSustained(result), cpuSecondsPerOrder, ...(pipeline ? { pipeline } : {}) }
  return report
}

export const ladder = async (
  settings: Settings,
  name: string,
  server: Server,
  probes: ReadonlyArray<CpuProbe>,
  afterStep?: AfterStep,
  afterWarmUp?: () => Promise<void>
) => {
  const steps: Array<StepReport> = []
  let misses = 0
  // warm-up, not recorded: JIT compilation and connection pools, the same for every scenario; then its work
  // is let finish (`afterWarmUp`: a pipeline's backlog), or the first step would count it as its own —
  // more CPU per order, and payments completing faster than offered as the backlog clears
  await load(server, settings.rates[0]!, 5, false)
  if (afterWarmUp) await afterWarmUp()
  await sleep(2000)
  for (const rate of settings.rates) {
    const report = await measureStep(settings, server, probes, rate, afterStep)
    steps.push(report)
    stepLine(name, report)
    if (!report.sustained && ++misses >= 2) break
    await sleep(1000)
  }
  return steps
}

export const maxSustained = (steps: ReadonlyArray<StepReport>) =>
  steps.filter((s) => s.sustained).reduce<StepReport | undefined>((best, s) => (!best || s.acceptedRate > best.acceptedRate ? s : best), undefined)

/** A server with nothing behind its POST /orders to wait for: the ladder, its CPU and its peak RSS. */
export const runHttpScenario = async (
  settings: Settings,
  name: string,
  args: Array<string>,
  ready: string,
  probes: ReadonlyArray<CpuProbe>,
  env: Record<string, string> = {},
  node?: string
) => {
  log(`scenario ${name}`)
  const server = await startServer(name, args, env, ready, node)
  const appProbe: CpuProbe = { name: "server", read: () => treeCpuSeconds(server.child.pid!) }
  try {
    const steps = await ladder(settings, name, server, [appProbe, ...probes])
    return { steps, peakRssMiB: peakRssMiB(server.child.pid!) }
  } finally {
    await stopServer(server)
  }
}

export type HttpScenarioResult = Awaited<ReturnType<typeof runHttpScenario>>
