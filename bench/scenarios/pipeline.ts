/**
 * The pipeline scenarios: our system end to end (POST /orders → relay → Kafka → payment worker → provider
 * simulator → OrderPaid), in the layout given: `ours` (all roles in one process), `split` (the API apart from
 * relay, worker and projector) and `previous` (the code of an earlier commit, built in a worktree). Each
 * step waits until its orders are PAID and reads POST→PAID latency, PAID/s, relay lag and the stages from
 * the database.
 */
import pg from "pg"
import { baselineCheckout } from "../lib/baseline.js"
import { dbUrl, log, metricValue, psql, type Settings, sleep } from "../lib/common.js"
import { ladder, measureStep, type PipelineReport, type StepReport, stepLine } from "../lib/ladder.js"
import { newHistogram, type StepResult, summarize } from "../lib/loadgen.js"
import { type CpuProbe, type Server, startServer, stopServer } from "../lib/processes.js"
import { peakRssMiB, treeCpuSeconds } from "../lib/procstat.js"

const control = (change: Record<string, unknown>) =>
  fetch("http://127.0.0.1:3204/control", { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(change) })

export interface PipelineLayout {
  /** Scenario name (log files, report). */
  readonly name: string
  /** The checkout whose dist/ runs (the working tree, or the baseline's worktree). */
  readonly root: string
  /** The processes of the app: their roles. The first one serves the API. */
  readonly processes: ReadonlyArray<string>
  /** Run one more step at the 70% rate with this share of transient provider errors. */
  readonly errorRate?: number
}

/** Our pipeline end to end: the app's processes and the provider simulator, a ladder, a 70% step (and the
 * error step). Every scenario gets its own database, topics and consumer group. */
export const runPipeline = async (settings: Settings, probes: ReadonlyArray<CpuProbe>, brokers: string, layout: PipelineLayout) => {
  log(`scenario ${layout.name} (${layout.processes.join(" + ")})`)
  const database = `orders_bench_${layout.name.replace(/[^a-z0-9]/g, "_")}`
  psql(dbUrl("postgres"), "-c", `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
  const stamp = Date.now()
  const env = {
    DATABASE_URL: dbUrl(database),
    KAFKA_BROKERS: brokers,
    KAFKA_TOPIC_PREFIX: `bench-${layout.name}-${stamp}-`,
    PORT: "3203",
    HOST: "127.0.0.1",
    PROVIDER_PORT: "3204",
    PAYMENT_PROVIDER_URL: "http://127.0.0.1:3204",
    PROVIDER_LATENCY_MS: String(settings.providerLatencyMs),
    PAYMENT_WORKER_GROUP: `bench-worker-${layout.name}-${stamp}`
  }
  const dist = `${layout.root}/dist/main.js`
  const pool = new pg.Pool({ connectionString: dbUrl(database), max: 2 })
  const provider = await startServer(`${layout.name}-provider`, [dist, "payment-provider"], env, "http://127.0.0.1:3204/control")
  const servers: Array<Server> = []
  const apiUrls: Array<string> = []
  for (const [i, roles] of layout.processes.entries()) {
    // each API process on a port of its own (3203, then 3208, 3209, …); the others are ready once the provider is
    const port = apiUrls.length === 0 ? 3203 : 3207 + apiUrls.length
    const serves = roles.split(",").includes("api")
    const ready = serves ? `http://127.0.0.1:${port}/health/ready` : "http://127.0.0.1:3204/control"
    servers.push(await startServer(`${layout.name}-${i}`, [...settings.nodeFlags, dist, roles], { ...env, PORT: String(port) }, ready))
    if (serves) apiUrls.push(`http://127.0.0.1:${port}`)
  }
  const server: Server = { ...servers[0]!, urls: apiUrls }
  const appProbe: CpuProbe = { name: "app (all roles)", read: () => servers.reduce((n, s) => n + treeCpuSeconds(s.child.pid!), 0) }
  const providerProbe: CpuProbe = { name: "provider simulator", read: () => treeCpuSeconds(provider.child.pid!) }
  const allProbes = [appProbe, providerProbe, ...probes]

  const pipeline = async (result: StepResult): Promise<PipelineReport> => {
    const ids = result.bodies.map((b) => (b as { orderId: string }).orderId)
    const lagSamples: Array<number> = []
    // wait until the step's orders are PAID (the relay, worker and provider drain the backlog)
    const drainStart = Date.now()
    let paid = 0
    while (Date.now() - drainStart < 180_000) {
      const metrics = await fetch(`${server.url}/metrics`).then((r) => r.text()).catch(() => "")
      const lag = metricValue(metrics, "consumer_lag_messages")
      if (Number.isFinite(lag) && lag >= 0) lagSamples.push(lag)
      const { rows } = await pool.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM orders WHERE order_id = ANY($1::uuid[]) AND status = 'PAID'",
        [ids]
      )
      paid = rows[0]!.n
      if (paid === ids.length) break
      await sleep(250)
    }
    const drainSeconds = (Date.now() - drainStart) / 1000
    const { rows } = await pool.query<{ id: string; ms: number; paid: number }>(
      `SELECT placed.stream_id::text AS id, extract(epoch FROM (done.recorded_at - placed.recorded_at)) * 1000 AS ms,
              extract(epoch FROM done.recorded_at) * 1000 AS paid
       FROM events placed JOIN events done ON done.stream_id = placed.stream_id AND done.type = 'OrderPaid'
       WHERE placed.type = 'OrderPlaced' AND placed.stream_id = ANY($1::uuid[])`,
      [ids]
    )
    const failures = new Set(
      await fetch("http://127.0.0.1:3204/failures").then((r) => r.json() as Promise<{ orders: Array<string> }>)
        .then((b) => b.orders).catch(() => [] as Array<string>)
    )
    const toPaid = newHistogram()
    const toPaidNoError = newHistogram()
    for (const r of rows) {
      const us = Math.max(1, Math.round(Number(r.ms) * 1000))
      toPaid.recordValue(us)
      if (!failures.has(r.id)) toPaidNoError.recordValue(us)
    }
    // the rate payments completed at: between the first and the last OrderPaid of the step
    const firstPaid = Math.min(...rows.map((r) => Number(r.paid)))
    const lastPaid = Math.max(...rows.map((r) => Number(r.paid)))
    const span = Math.max((lastPaid - firstPaid) / 1000, 0.001)
    const relay = await pool.query<{ ms: number }>(
      `SELECT extract(epoch FROM (published_at - created_at)) * 1000 AS ms FROM outbox
       WHERE stream_id = ANY($1::uuid[]) AND published_at IS NOT NULL`,
      [ids]
    )
    const relayLag = newHistogram()
    for (const r of relay.rows) relayLag.recordValue(Math.max(1, Math.round(Number(r.ms) * 1000)))
    const stages = await pool.query<{ relay: number; pickup: number; charge: number }>(
      `SELECT extract(epoch FROM (o.published_at - placed.recorded_at)) * 1000 AS relay,
              extract(epoch FROM (req.recorded_at - o.published_at)) * 1000 AS pickup,
              extract(epoch FROM (done.recorded_at - req.recorded_at)) * 1000 AS charge
       FROM events placed
       JOIN outbox o ON o.position = placed.position
       JOIN events req ON req.stream_id = placed.stream_id AND req.type = 'PaymentRequested'
       JOIN events done ON done.stream_id = placed.stream_id AND done.type = 'OrderPaid'
       WHERE placed.type = 'OrderPlaced' AND placed.stream_id = ANY($1::uuid[])`,
      [ids]
    )
    const stage = (pick: (r: { relay: number; pickup: number; charge: number }) => number) => {
      const h = newHistogram()
      // a stage can be ≤ 0 by a few µs where two clocks meet (statement start vs clock_timestamp)
      for (const r of stages.rows) h.recordValue(Math.max(1, Math.round(Number(pick(r)) * 1000)))
      return summarize(h)
    }
    const sortedLag = [...lagSamples].sort((a, b) => a - b)
    const paidPerSecond = rows.length / span
    return {
      paid: rows.length,
      paidPerSecond,
      // kept up: every order PAID, at the offered rate, and no backlog left when the POSTs ended
      keptUp: rows.length === ids.length && paidPerSecond >= 0.97 * result.offeredRate && drainSeconds <= 2,
      postToPaidMs: summarize(toPaid),
      postToPaidNoErrorMs: summarize(toPaidNoError),
      ordersWithProviderError: rows.length - toPaidNoError.totalCount,
      relayLagMs: summarize(relayLag),
      consumerLagMessages: {
        max: sortedLag[sortedLag.length - 1] ?? 0,
        p99: sortedLag[Math.min(sortedLag.length - 1, Math.floor(sortedLag.length * 0.99))] ?? 0
      },
      drainSeconds,
      stagesMs: { relay: stage((r) => r.relay), pickup: stage((r) => r.pickup), charge: stage((r) => r.charge) }
    }
  }

  /** Until no order is left unsettled (the warm-up's), at most 3 minutes. */
  const settle = async () => {
    const start = Date.now()
    let open = -1
    while (Date.now() - start < 180_000) {
      const { rows } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM orders WHERE status IN ('CREATED', 'PAYMENT_PENDING')")
      open = rows[0]!.n
      if (open === 0) return
      await sleep(250)
    }
    log(`${layout.name}: ${open} warm-up orders still unsettled after 3 minutes; the first step counts them`)
  }

  try {
    const steps = await ladder({ ...settings, rates: settings.pipelineRates }, layout.name, server, allProbes, pipeline, settle)
    const endToEnd = steps.filter((s) => s.sustained && s.pipeline?.keptUp)
      .reduce<StepReport | undefined>((best, s) => (!best || s.offeredRate > best.offeredRate ? s : best), undefined)
    let atSeventyPercent: StepReport | undefined
    let withErrors: StepReport | undefined
    if (endToEnd) {
      const rate = Math.max(1, Math.round(endToEnd.offeredRate * 0.7))
      atSeventyPercent = await measureStep(settings, server, allProbes, rate, pipeline)
      stepLine(`${layout.name} at 70% of the end-to-end maximum`, atSeventyPercent)
      if (layout.errorRate !== undefined) {
        await control({ transientErrorRate: layout.errorRate })
        await sleep(1000)
        withErrors = await measureStep(settings, server, allProbes, rate, pipeline)
        await control({ transientErrorRate: 0 })
        stepLine(`${layout.name} at 70% with ${layout.errorRate * 100}% transient provider errors`, withErrors)
      }
    }
    return {
      processes: layout.processes,
      steps,
      endToEndMax: endToEnd?.offeredRate ?? 0,
      atSeventyPercent,
      withErrors,
      peakRssMiB: Math.max(...servers.map((s) => peakRssMiB(s.child.pid!)))
    }
  } finally {
    for (const s of servers.reverse()) await stopServer(s)
    await stopServer(provider)
    await pool.end()
  }
}

export type PipelineResult = Awaited<ReturnType<typeof runPipeline>>

/** The `previous` scenario: the pipeline of the code before the change (`baselineRef`, built in a worktree),
 * measured the same way in this run. */
export const runPrevious = async (settings: Settings, probes: ReadonlyArray<CpuProbe>, brokers: string, baselineRef: string) => {
  const checkout = baselineCheckout(baselineRef)
  try {
    return await runPipeline(settings, probes, brokers, { name: "previous", root: checkout.dir, processes: ["api,relay,worker,projector"] })
  } finally {
    checkout.remove()
  }
}
