/**
 * The webhooks scenario (issue 20): the system as `ours` runs it (`api,relay,worker,projector` in one process,
 * the provider simulator apart), plus the notifier in a process of its own (its CPU is measured apart) and the
 * webhook receiver simulator (merchants' endpoints: an external system, its CPU reported apart too), at one
 * fixed rate, in two runs of one invocation:
 *   alone   one healthy endpoint (receiver name `healthy`)
 *   three   healthy, one failing 20 % of its deliveries (`failRate: 0.2`) and one hanging (`hang: true`, so each
 *           of its calls ends at WEBHOOK_TIMEOUT_MS, default 15 s)
 * Each run gets a fresh database, topic prefix and processes; its endpoints are registered (SQL, every event
 * type), then 5 s of unrecorded warm-up (drained), then one step of BENCH_STEP_SECONDS at the rate, then a wait
 * until the healthy endpoint got every delivery of the step's orders (3 per order: placed, payment_pending,
 * paid). The measured window is from the step's start to then. Read from the receiver's record
 * (webhook_receipts: what arrived, when, what it answered) and the notifier's (webhook_deliveries).
 * Event → delivered is a receipt's received_at − the event's recorded time (the body's timestamp), first
 * receipt per webhook id. The webhook tables are ANALYZEd after the warm-up (BENCH_WEBHOOK_ANALYZE=0: not).
 * With BENCH_WEBHOOK_PROFILE=1 the notifier runs under `node --cpu-prof` and its profile over each measured
 * window is summarized (its CPU figures then include the profiler's cost). BENCH_WEBHOOK_CONTROL=1 is the control
 * for the isolation target: `three`'s other two endpoints are healthy too, so what the healthy endpoint's p99
 * loses beside them is the machine's added load, not a failing or hanging endpoint (the target is not judged).
 */
import { randomBytes, randomUUID } from "node:crypto"
import { readdirSync, rmSync } from "node:fs"
import pg from "pg"
import { monotonicMicros, summarizeProfile } from "../lib/cpuprofile.js"
import { dbUrl, here, log, orderBody, psql, round, type Settings, sleep } from "../lib/common.js"
import { newHistogram, runStep, summarize } from "../lib/loadgen.js"
import { type CpuProbe, sampleCpu, type Server, startServer, stopServer } from "../lib/processes.js"
import { peakRssMiB, treeCpuSeconds } from "../lib/procstat.js"

const receiverUrl = "http://127.0.0.1:3220"
const notifierOpsPort = 3221
const eventsPerOrder = 3

type EndpointName = "healthy" | "failing" | "hanging"
const behaviour: Readonly<Record<EndpointName, Record<string, unknown>>> = {
  healthy: {},
  failing: { failRate: 0.2 },
  hanging: { hang: true }
}

export type WebhookRunName = "alone" | "three"
const endpointsOf: Readonly<Record<WebhookRunName, ReadonlyArray<EndpointName>>> = {
  alone: ["healthy"],
  three: ["healthy", "failing", "hanging"]
}

const control = async (name: EndpointName, change: Record<string, unknown>) => {
  const answer = await fetch(`${receiverUrl}/control/${name}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(change)
  })
  if (!answer.ok) throw new Error(`receiver control ${name}: ${answer.status} ${await answer.text()}`)
}

/** An endpoint of every event type, registered as the admin API would (its table), its secret told to the receiver. */
/** With `asHealthy` (the control run, BENCH_WEBHOOK_CONTROL=1) the endpoint answers as the healthy one, whatever its name. */
const register = async (pool: pg.Pool, name: EndpointName, asHealthy: boolean) => {
  const id = randomUUID()
  const secret = `whsec_${randomBytes(32).toString("base64")}`
  await pool.query("INSERT INTO webhook_endpoints (id, url, event_types, secret) VALUES ($1, $2, NULL, $3)", [id, `${receiverUrl}/hooks/${name}`, secret])
  await control(name, { secrets: [secret], ...(asHealthy ? {} : behaviour[name]) })
  return id
}

/**
 * Receipts are tied to the step's orders through the notifier's delivery rows (webhook-id = delivery id): the
 * receiver reads an order id at `data.order.id`, our bodies carry it at `data.order.orderId`.
 */
const healthyDelivered = async (pool: pg.Pool, endpointId: string, ids: ReadonlyArray<string>) =>
  (await pool.query<{ n: number }>(
    `SELECT count(DISTINCT r.webhook_id)::int AS n FROM webhook_receipts r
     JOIN webhook_deliveries d ON d.id = r.webhook_id::uuid
     WHERE r.name = 'healthy' AND d.endpoint_id = $1 AND d.order_id = ANY($2::uuid[])`,
    [endpointId, ids]
  )).rows[0]!.n

/** Until the healthy endpoint got every delivery of these orders (or `timeoutMs`): how long that took. */
const drainHealthy = async (pool: pg.Pool, endpointId: string, ids: ReadonlyArray<string>, timeoutMs: number) => {
  const start = Date.now()
  let delivered = 0
  while (Date.now() - start < timeoutMs) {
    delivered = await healthyDelivered(pool, endpointId, ids)
    if (delivered >= eventsPerOrder * ids.length) break
    await sleep(250)
  }
  return { delivered, seconds: (Date.now() - start) / 1000 }
}

/** One endpoint's figures: what it was sent in the window, its backlog at the window's end, the step's orders'. */
export interface EndpointFigures {
  readonly window: {
    readonly attempts: number
    readonly ok: number
    readonly errors: number
    readonly unanswered: number
    readonly invalidSignatures: number
    readonly retries: number
  }
  readonly backlog: { readonly pending: number; readonly due: number }
  readonly stepOrders: { readonly deliveries: number; readonly delivered: number; readonly pending: number; readonly attempts: number }
}

const clock = async (pool: pg.Pool) => (await pool.query<{ t: Date }>("SELECT clock_timestamp() AS t")).rows[0]!.t

/** One run: its processes, endpoints, warm-up and measured step. */
const runOnce = async (
  settings: Settings,
  probes: ReadonlyArray<CpuProbe>,
  brokers: string,
  run: WebhookRunName,
  rate: number,
  { analyze, profile, control: asHealthy }: { readonly analyze: boolean; readonly profile: boolean; readonly control: boolean }
) => {
  log(`scenario webhooks, ${run}: ${endpointsOf[run].join(" + ")} at ${rate} orders/s`)
  const database = `${settings.benchDb}_webhooks_${run}`
  psql(dbUrl("postgres"), "-c", `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
  const stamp = Date.now()
  const env = {
    DATABASE_URL: dbUrl(database),
    KAFKA_BROKERS: brokers,
    KAFKA_TOPIC_PREFIX: `bench-webhooks-${run}-${stamp}-`,
    PORT: "3203",
    HOST: "127.0.0.1",
    PROVIDER_PORT: "3204",
    PAYMENT_PROVIDER_URL: "http://127.0.0.1:3204",
    PROVIDER_LATENCY_MS: String(settings.providerLatencyMs),
    PAYMENT_WORKER_GROUP: `bench-worker-webhooks-${run}-${stamp}`,
    RECEIVER_PORT: new URL(receiverUrl).port,
    // the receiver listens on loopback over http (development's default, said explicitly)
    WEBHOOK_ALLOW_PRIVATE_URLS: "true"
  }
  const profileDir = `${here}results/profiles/webhooks-${run}`
  if (profile) rmSync(profileDir, { recursive: true, force: true })
  const started: Array<Server> = []
  const start = async (name: string, args: Array<string>, ready: string, extra: Record<string, string> = {}) => {
    const server = await startServer(`webhooks-${run}-${name}`, args, { ...env, ...extra }, ready)
    started.push(server)
    return server
  }
  const pool = new pg.Pool({ connectionString: dbUrl(database), max: 2 })
  try {
    const provider = await start("provider", ["dist/main.js", "payment-provider"], "http://127.0.0.1:3204/control")
    const receiver = await start("receiver", ["dist/main.js", "webhook-receiver"], `${receiverUrl}/control/healthy`)
    const app = await start("app", [...settings.nodeFlags, "dist/main.js", "api,relay,worker,projector"], "http://127.0.0.1:3203/health/ready")
    const notifier = await start(
      "notifier",
      [...settings.nodeFlags, ...(profile ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : []), "dist/main.js", "notifier"],
      `http://127.0.0.1:${notifierOpsPort}/health/ready`,
      { OPS_PORT: String(notifierOpsPort) }
    )
    const endpointIds = new Map<EndpointName, string>()
    for (const name of endpointsOf[run]) endpointIds.set(name, await register(pool, name, asHealthy))
    const healthy = endpointIds.get("healthy")!
    const allProbes: Array<CpuProbe> = [
      { name: "notifier", read: () => treeCpuSeconds(notifier.child.pid!) },
      { name: "app (all roles)", read: () => treeCpuSeconds(app.child.pid!) },
      { name: "provider simulator", read: () => treeCpuSeconds(provider.child.pid!) },
      { name: "webhook receiver", read: () => treeCpuSeconds(receiver.child.pid!) },
      ...probes
    ]
    const post = (seconds: number) => runStep({ url: `${app.url}/orders`, rate, seconds, body: orderBody, collect: true })
    const orderIds = (bodies: ReadonlyArray<unknown>) => bodies.map((b) => (b as { orderId: string }).orderId)

    // warm-up, not recorded (JIT, pools; the failing and hanging endpoints reach their steady state)
    const warm = await post(5)
    await drainHealthy(pool, healthy, orderIds(warm.bodies), 120_000)
    // the statistics autovacuum would have gathered by now: the local server runs with autovacuum off, and
    // without them the dispatcher's claim is planned as a scan of the endpoint's whole backlog per candidate
    // (docs/PERFORMANCE.md "Webhooks"); BENCH_WEBHOOK_ANALYZE=0 measures that
    if (analyze) await pool.query("ANALYZE webhook_endpoints, webhook_deliveries")
    await sleep(2000)

    const from = await clock(pool)
    const before = sampleCpu(allProbes)
    const fromUs = monotonicMicros()
    const step = await post(settings.stepSeconds)
    const ids = orderIds(step.bodies)
    const drain = await drainHealthy(pool, healthy, ids, 180_000)
    const toUs = monotonicMicros()
    const after = sampleCpu(allProbes)
    const to = await clock(pool)
    const cpuSeconds = Object.fromEntries(allProbes.map((p) => [p.name, after[p.name]! - before[p.name]!]))

    // the healthy endpoint: event → delivered, first receipt per webhook id, of the step's orders
    const firsts = await pool.query<{ ms: number; at: number; consume: number; queue: number; send: number; settle: number | null }>(
      `SELECT DISTINCT ON (r.webhook_id) extract(epoch FROM (r.received_at - r.event_timestamp)) * 1000 AS ms,
              extract(epoch FROM r.received_at) * 1000 AS at,
              extract(epoch FROM (d.created_at - d.event_recorded_at)) * 1000 AS consume,
              extract(epoch FROM (d.last_attempt_at - d.created_at)) * 1000 AS queue,
              extract(epoch FROM (r.received_at - d.last_attempt_at)) * 1000 AS send,
              extract(epoch FROM (d.delivered_at - r.received_at)) * 1000 AS settle
       FROM webhook_receipts r JOIN webhook_deliveries d ON d.id = r.webhook_id::uuid
       WHERE r.name = 'healthy' AND d.endpoint_id = $1 AND d.order_id = ANY($2::uuid[])
       ORDER BY r.webhook_id, r.id`,
      [healthy, ids]
    )
    const latency = newHistogram()
    // the event's time is the database's (ms in the body), the receipt's the receiver's: one machine, one clock
    for (const r of firsts.rows) latency.recordValue(Math.max(1, Math.round(Number(r.ms) * 1000)))
    /** Event → delivered cut at the rows' own times (the healthy endpoint answers every first attempt, so its
     * last attempt is its first): event recorded → delivery row written (relay, Kafka, the notifier's
     * consumer), → claimed (the dispatcher's queue), → at the receiver (request sent), → marked delivered
     * (the receiver's answer, which waits for its own INSERT, and the notifier's UPDATE). */
    const stage = (pick: (r: (typeof firsts.rows)[number]) => number | null) => {
      const h = newHistogram()
      // two clocks meet at the receiver (its own and the database's): a stage can be ≤ 0 by a little
      for (const r of firsts.rows) if (pick(r) !== null) h.recordValue(Math.max(1, Math.round(Number(pick(r)) * 1000)))
      return summarize(h)
    }
    const stagesMs = { consume: stage((r) => r.consume), queue: stage((r) => r.queue), send: stage((r) => r.send), settle: stage((r) => r.settle) }
    const ats = firsts.rows.map((r) => Number(r.at))
    const span = Math.max((Math.max(...ats) - Math.min(...ats)) / 1000, 0.001)

    // what each endpoint was sent during the window (the receiver's record)
    const window = await pool.query<{ name: EndpointName; invalid: number } & Omit<EndpointFigures["window"], "invalidSignatures">>(
      `WITH numbered AS (
         SELECT name, answered, valid, received_at, row_number() OVER (PARTITION BY name, webhook_id ORDER BY id) AS nth
         FROM webhook_receipts)
       SELECT name, count(*)::int AS attempts,
              count(*) FILTER (WHERE answered BETWEEN 200 AND 299)::int AS ok,
              count(*) FILTER (WHERE answered >= 300)::int AS errors,
              count(*) FILTER (WHERE answered IS NULL)::int AS unanswered,
              count(*) FILTER (WHERE valid IS NOT TRUE)::int AS invalid,
              count(*) FILTER (WHERE nth > 1)::int AS retries
       FROM numbered WHERE received_at BETWEEN $1 AND $2 GROUP BY name`,
      [from, to]
    )
    // and the notifier's record at the window's end: the backlog, and the step's orders' deliveries
    const rows = await pool.query<
      { id: string; pending: number; due: number; stepDeliveries: number; stepDelivered: number; stepPending: number; stepAttempts: number }
    >(
      `SELECT e.id::text,
              count(d.id) FILTER (WHERE d.status = 'pending')::int AS pending,
              count(d.id) FILTER (WHERE d.status = 'pending' AND d.next_attempt_at <= now())::int AS due,
              count(d.id) FILTER (WHERE d.order_id = ANY($1::uuid[]))::int AS "stepDeliveries",
              count(d.id) FILTER (WHERE d.order_id = ANY($1::uuid[]) AND d.status = 'delivered')::int AS "stepDelivered",
              count(d.id) FILTER (WHERE d.order_id = ANY($1::uuid[]) AND d.status = 'pending')::int AS "stepPending",
              coalesce(sum(d.attempts) FILTER (WHERE d.order_id = ANY($1::uuid[])), 0)::int AS "stepAttempts"
       FROM webhook_endpoints e LEFT JOIN webhook_deliveries d ON d.endpoint_id = e.id GROUP BY e.id`,
      [ids]
    )
    const endpoints: Partial<Record<EndpointName, EndpointFigures>> = Object.fromEntries(endpointsOf[run].map((name): [EndpointName, EndpointFigures] => {
      const sent = window.rows.find((r) => r.name === name)
      const kept = rows.rows.find((r) => r.id === endpointIds.get(name))
      return [name, {
        window: {
          attempts: sent?.attempts ?? 0,
          ok: sent?.ok ?? 0,
          errors: sent?.errors ?? 0,
          unanswered: sent?.unanswered ?? 0,
          invalidSignatures: sent?.invalid ?? 0,
          retries: sent?.retries ?? 0
        },
        backlog: { pending: kept?.pending ?? 0, due: kept?.due ?? 0 },
        stepOrders: { deliveries: kept?.stepDeliveries ?? 0, delivered: kept?.stepDelivered ?? 0, pending: kept?.stepPending ?? 0, attempts: kept?.stepAttempts ?? 0 }
      }]
    }))
    const deliveredInWindow = window.rows.reduce((n, r) => n + r.ok, 0)
    const attemptsInWindow = window.rows.reduce((n, r) => n + r.attempts, 0)
    const notifierMs = cpuSeconds["notifier"]! * 1000
    const result = {
      run,
      endpoints: endpointsOf[run],
      rate,
      orders: step.ok,
      post: { acceptedRate: step.acceptedRate, errors: step.errors, latencyMs: step.latencyMs },
      windowSeconds: (to.getTime() - from.getTime()) / 1000,
      /** The window on the monotonic clock (µs), for an outside profiler's samples (`perf record --clockid monotonic`). */
      windowMonotonicUs: { from: fromUs, to: toUs },
      healthy: {
        expected: eventsPerOrder * ids.length,
        delivered: firsts.rows.length,
        deliveriesPerSecond: firsts.rows.length / span,
        drainSeconds: drain.seconds,
        // as a pipeline step keeps up: every delivery made, at the rate events came, no backlog 2 s after the POSTs
        keptUp: firsts.rows.length === eventsPerOrder * ids.length && firsts.rows.length / span >= 0.97 * eventsPerOrder * rate &&
          drain.seconds <= 2,
        eventToDeliveredMs: summarize(latency),
        stagesMs
      },
      /** 2xx answers and requests of every endpoint in the window. */
      deliveredInWindow,
      attemptsInWindow,
      notifierCpuMs: {
        total: notifierMs,
        perDeliveredEvent: deliveredInWindow > 0 ? notifierMs / deliveredInWindow : NaN,
        perHealthyDelivery: firsts.rows.length > 0 ? notifierMs / firsts.rows.length : NaN,
        perAttempt: attemptsInWindow > 0 ? notifierMs / attemptsInWindow : NaN,
        perOrder: step.ok > 0 ? notifierMs / step.ok : NaN
      },
      cpuMsPerOrder: Object.fromEntries(Object.entries(cpuSeconds).map(([k, v]) => [k, step.ok > 0 ? (v * 1000) / step.ok : NaN])),
      endpointsDetail: endpoints,
      notifierPeakRssMiB: peakRssMiB(notifier.child.pid!),
      profile: undefined as ReturnType<typeof summarizeProfile> | undefined
    }
    log(`webhooks ${run} @${rate}/s: healthy ${result.healthy.delivered}/${result.healthy.expected} delivered, ${round(result.healthy.deliveriesPerSecond)}/s, event→delivered p50 ${
      round(result.healthy.eventToDeliveredMs.p50)
    } p99 ${round(result.healthy.eventToDeliveredMs.p99)} ms; notifier CPU ${round(result.notifierCpuMs.perDeliveredEvent, 3)} ms per delivered event, ${
      round(result.notifierCpuMs.perOrder, 3)
    } ms per order; drain ${round(drain.seconds, 1)} s${result.healthy.keptUp ? "" : " — not kept up"}`)
    for (const s of [...started].reverse()) await stopServer(s)
    started.length = 0
    if (profile) {
      const file = readdirSync(profileDir).find((f) => f.endsWith(".cpuprofile"))
      if (file === undefined) log(`webhooks ${run}: the notifier wrote no profile (killed?)`)
      else result.profile = summarizeProfile(`${profileDir}/${file}`, { fromUs, toUs })
    }
    return result
  } finally {
    for (const s of started.reverse()) await stopServer(s)
    await pool.end()
  }
}

/** The healthy endpoint's p99 beside the others ÷ alone, or undefined when alone did not keep up (a backlog's age
 * is no baseline). */
const isolationRatio = (alone: WebhookRunResultOf, three: WebhookRunResultOf) =>
  alone.healthy.keptUp ? three.healthy.eventToDeliveredMs.p99 / alone.healthy.eventToDeliveredMs.p99 : undefined

/**
 * BENCH_WEBHOOK_PAIRS pairs (default 3) of runs, `alone` then `three`, at `rate` orders/s, each step
 * BENCH_WEBHOOK_STEP_SECONDS long (default 20): one pair's p99 ratio swings with the machine's noise (1.0–1.9× in
 * four pairs of one session), so the target is judged on the pairs' median ratio; the tables show that pair.
 */
export const runWebhooks = async (settings: Settings, probes: ReadonlyArray<CpuProbe>, brokers: string, rate: number) => {
  const options = {
    analyze: process.env.BENCH_WEBHOOK_ANALYZE !== "0",
    profile: process.env.BENCH_WEBHOOK_PROFILE === "1",
    control: process.env.BENCH_WEBHOOK_CONTROL === "1"
  }
  const pairCount = Math.max(1, Number(process.env.BENCH_WEBHOOK_PAIRS ?? 3))
  const stepped = { ...settings, stepSeconds: Number(process.env.BENCH_WEBHOOK_STEP_SECONDS ?? 20) }
  const runs: Array<{ readonly alone: WebhookRunResultOf; readonly three: WebhookRunResultOf }> = []
  for (let k = 0; k < pairCount; k++) {
    const alone = await runOnce(stepped, probes, brokers, "alone", rate, options)
    const three = await runOnce(stepped, probes, brokers, "three", rate, options)
    runs.push({ alone, three })
    const r = isolationRatio(alone, three)
    log(`webhooks pair ${k + 1}/${pairCount}: healthy p99 ${round(three.healthy.eventToDeliveredMs.p99)} ms beside the others, ${round(alone.healthy.eventToDeliveredMs.p99)} ms alone: ${r === undefined ? "no baseline (alone not kept up)" : `${round(r)}×`}`)
  }
  const pairs = runs.map(({ alone, three }) => ({
    aloneP99: alone.healthy.eventToDeliveredMs.p99,
    threeP99: three.healthy.eventToDeliveredMs.p99,
    aloneKeptUp: alone.healthy.keptUp,
    threeKeptUp: three.healthy.keptUp,
    ratio: isolationRatio(alone, three)
  }))
  // the median pair by ratio (the upper one of an even count); pairs without a baseline rank last
  const ranked = runs.map((r, k) => ({ r, ratio: pairs[k]!.ratio ?? Infinity })).sort((a, b) => a.ratio - b.ratio)
  const median = ranked[Math.floor(ranked.length / 2)]!.r
  return { rate, stepSeconds: stepped.stepSeconds, analyzed: options.analyze, profiled: options.profile, control: options.control, pairs, alone: median.alone, three: median.three }
}

type WebhookRunResultOf = Awaited<ReturnType<typeof runOnce>>

export type WebhooksResult = Awaited<ReturnType<typeof runWebhooks>>
export type WebhookRunResult = WebhooksResult["alone"]
