/**
 * One schedule of the run: a fresh database and topic prefix, every role as its own process against the
 * suite's broker, bounded open-loop load under the seeded nemesis, heal, the quiescence wait, then the
 * checker; writes the schedule's timeline, exchanges and report under its seed's directory.
 */
import { randomBytes, randomUUID } from "node:crypto"
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import type { Broker } from "./broker.js"
import { loadDatabase, runChecks } from "./checker.js"
import { groupLag, Injector, kafkaClient, Observer, readTopics } from "./kafkaio.js"
import { LoadGenerator } from "./load.js"
import { Nemesis } from "./nemesis.js"
import { options, replayCommand } from "./options.js"
import type { PgCluster } from "./postgres.js"
import { Prng } from "./prng.js"
import { PROCESS_NAMES, type RoleName, RoleProcess, ROOT, runCommand } from "./procs.js"
import { errorLines, logExcerpts, renderSchedule, type ScheduleResult, type TimelineEntry } from "./report.js"
import { describeFault, drawSchedule, TERM_DEADLINE_MS, WEBHOOK_ENDPOINTS, type WebhookEndpointName } from "./schedule.js"
import { answers, awaitQuiescence, sleep, waitFor, withClient } from "./waits.js"

/** The events topic's partitions, given to the roles (KAFKA_PARTITIONS) and expected by the lag probe. */
const EVENTS_PARTITIONS = 6

/** how long the load waits for an answer */
const CLIENT_TIMEOUT_MS = 10_000

/** The notifier's retries: short enough that a delivery due at the heal is made well inside the liveness bound
 * (spent in ~35 s, jitter aside), long enough to outlast most receiver faults (2–12 s) */
const WEBHOOK_RETRY_SCHEDULE = "0,500ms,1s,2s,2s,5s,5s,5s,5s,5s"
const WEBHOOK_TIMEOUT_MS = 2000

/** What each endpoint registered at the receiver subscribes to (null: every type) */
const SUBSCRIPTIONS: Record<WebhookEndpointName, ReadonlyArray<string> | null> = { all: null, paid: ["order.paid"] }

/** The PostgreSQL of the run: its own cluster (null when CHAOS_DATABASE_BASE names another server) and the
 * base of its database URLs. */
export interface RunPostgres {
  readonly cluster: PgCluster | null
  readonly base: string
}

/** Run the schedule of seed on the broker and PostgreSQL; its files go under outDir/seed-<seed>. */
export const runSchedule = async (broker: Broker, postgres: RunPostgres, seed: number, outDir: string): Promise<ScheduleResult> => {
  const started = Date.now()
  const timeline: Array<TimelineEntry> = []
  const dir = join(outDir, `seed-${seed}`)
  mkdirSync(dir, { recursive: true })
  const note = (kind: string, detail: string) => {
    const entry = { t: Date.now() - started, kind, detail }
    timeline.push(entry)
    appendFileSync(join(dir, "timeline.log"), `${new Date().toISOString()} ${(entry.t / 1000).toFixed(1)} s ${kind} ${detail}\n`)
  }
  const database = `chaos_${seed}`
  const databaseUrl = `${postgres.base}/${database}`
  const tag = `${seed}-${Date.now().toString(36)}`
  const prefix = `chaos-${tag}.`
  const eventsTopic = `${prefix}orders.events`
  const dlqTopic = `${prefix}orders.events.dlq`
  broker.timeline = note
  const rng = new Prng(seed)
  const faults = drawSchedule(rng, options.durationS * 1000, options.faults)
  const load = new Prng(seed + 0x5eed)
  const replay = replayCommand(seed)
  const apiPorts = [options.portBase + 1, options.portBase + 2]
  const apiUrls = apiPorts.map((p) => `http://127.0.0.1:${p}`)
  const providerPort = options.portBase + 3
  const providerUrl = `http://127.0.0.1:${providerPort}`
  const receiverPort = options.portBase + 4
  const receiverUrl = `http://127.0.0.1:${receiverPort}`
  const notifierGroup = `chaos-${tag}-notifier`
  // the endpoints' secrets, made here: registered with the endpoints and given to the receiver at its start, so
  // that a receiver killed and started again verifies at once
  const endpoints = new Map(WEBHOOK_ENDPOINTS.map((name) => [name, { id: randomUUID(), secret: `whsec_${randomBytes(32).toString("base64")}` }]))
  const roles = new Map<RoleName, RoleProcess>()
  const logs = () => PROCESS_NAMES.map((n) => ({ name: n, file: join(dir, `${n}.log`) }))
  let nemesis: Nemesis | null = null
  const kafka = kafkaClient(broker.address, `chaos-${tag}`)
  const observer = new Observer(kafka, eventsTopic, `chaos-${tag}-observer`)
  const injector = new Injector(kafka)
  let result: ScheduleResult
  try {
    // a fresh database (a replay drops the one its seed left)
    await withClient(`${postgres.base}/postgres`, async (c) => {
      await c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", [database])
      await c.query(`DROP DATABASE IF EXISTS ${database}`)
    })
    const common = {
      DATABASE_URL: databaseUrl,
      DATABASE_POOL_SIZE: "4",
      KAFKA_BROKERS: broker.address,
      KAFKA_TOPIC_PREFIX: prefix,
      KAFKA_PARTITIONS: String(EVENTS_PARTITIONS),
      PAYMENT_WORKER_GROUP: `chaos-${tag}-worker`,
      PAYMENT_PROVIDER_URL: providerUrl,
      PROVIDER_PORT: String(providerPort),
      HOST: "127.0.0.1",
      // the ops endpoints of the processes without the api (all but api1, api2): any free port each
      OPS_PORT: "0",
      LOG_LEVEL: "Info",
      SWEEP_AFTER_MS: "10000",
      RETRY_POLL_MS: "1000",
      // durable payment retries at most 10 s apart, so a payment due after the heal is retried well inside
      // the liveness bound (the default cap, 60 s, is longer than the bound itself)
      PAYMENT_RETRY_MAX_DELAY_MS: "10000",
      IDEMPOTENCY_LEASE_MS: "10000",
      NOTIFIER_GROUP: notifierGroup,
      WEBHOOK_RETRY_SCHEDULE,
      WEBHOOK_TIMEOUT_MS: String(WEBHOOK_TIMEOUT_MS),
      // the receiver listens on 127.0.0.1 over http
      WEBHOOK_ALLOW_PRIVATE_URLS: "true"
    }
    const migrate = await runCommand(process.execPath, [join(ROOT, "dist/main.js"), "migrate"], common)
    if (migrate.code !== 0) throw new Error(`migrate failed: ${migrate.stderr.slice(-1000)}${migrate.stdout.slice(-1000)}`)
    // the two endpoints, registered before any event: every event type, and order.paid only
    await withClient(databaseUrl, async (c) => {
      for (const [name, { id, secret }] of endpoints) {
        await c.query("INSERT INTO webhook_endpoints (id, url, event_types, description, secret) VALUES ($1, $2, $3, $4, $5)",
          [id, `${receiverUrl}/hooks/${name}`, SUBSCRIPTIONS[name], `chaos ${name}`, secret])
      }
    })
    note("setup", `database ${database}, topic prefix ${prefix}, broker ${broker.address}; webhook endpoints ${[...endpoints].map(([n, e]) => `${n} ${e.id}`).join(", ")}`)
    const receiverEndpoints = JSON.stringify(Object.fromEntries([...endpoints].map(([name, e]) => [name, { secrets: [e.secret] }])))
    const specs: Array<[RoleName, string, Record<string, string>]> = [
      ["provider", "payment-provider", {}],
      ["receiver", "webhook-receiver", { RECEIVER_PORT: String(receiverPort), RECEIVER_HOST: "127.0.0.1", RECEIVER_ENDPOINTS: receiverEndpoints }],
      ["api1", "api", { PORT: String(apiPorts[0]) }],
      ["api2", "api", { PORT: String(apiPorts[1]) }],
      ["relay", "relay", {}],
      ["worker1", "worker", {}],
      ["worker2", "worker", {}],
      ["projector", "projector", {}],
      ["notifier1", "notifier", {}],
      ["notifier2", "notifier", {}]
    ]
    for (const [name, role, env] of specs) {
      const p = new RoleProcess({ name, role, env: { ...common, ...env } }, join(dir, `${name}.log`), note)
      roles.set(name, p)
      p.start()
    }
    await waitFor("the provider", 180_000, answers(`${providerUrl}/control`))
    await waitFor("the webhook receiver", 180_000, answers(`${receiverUrl}/control/all`))
    for (const port of apiPorts) await waitFor(`api on ${port}`, 180_000, answers(`http://127.0.0.1:${port}/health/ready`))
    // the relay and workers create the topics; the observer needs them
    await waitFor("the topics", 180_000, async () => {
      const admin = kafka.admin()
      await admin.connect()
      try {
        const topics = await admin.listTopics()
        return topics.includes(eventsTopic) && topics.includes(dlqTopic)
      } finally {
        await admin.disconnect()
      }
    })
    await observer.start()
    await injector.connect()
    note("start", `all roles up; load ${options.rate}/s for ${options.durationS} s; schedule: ${faults.length} faults`)
    for (const f of faults) note("plan", `at ${(f.at / 1000).toFixed(1)} s: ${describeFault(f)}`)

    // ---- load + nemesis ----
    const loadGen = new LoadGenerator(load, apiUrls, seed, {
      rate: options.rate,
      retryShare: 0.1,
      cancelShare: 0.1,
      refundShare: 0.1,
      maxInFlight: 300,
      timeoutMs: CLIENT_TIMEOUT_MS
    })
    nemesis = new Nemesis(rng, roles, broker, databaseUrl, database, postgres.cluster, providerUrl, eventsTopic, observer, injector, note, {
      receiverUrl,
      endpointIds: new Map([...endpoints].map(([name, e]) => [name, e.id])),
      timeoutMs: WEBHOOK_TIMEOUT_MS
    })
    nemesis.run(faults)
    await loadGen.run(options.durationS * 1000)
    note("heal", "load stopped; healing")
    await nemesis.heal()
    await loadGen.drain()
    for (const port of apiPorts) await waitFor(`api on ${port} after healing`, 180_000, answers(`http://127.0.0.1:${port}/health/ready`))
    // claims left by a killed or paused api, or by a request that failed, are taken over after the lease
    // (IDEMPOTENCY_LEASE_MS): the keys are sent again only once it has passed, so a 409 then is a stuck key
    let lastFailure = nemesis.lastApiDisruption
    for (const e of loadGen.exchanges) if (e.status === null || e.status >= 500) lastFailure = Math.max(lastFailure, e.sentAt)
    const leaseLeft = lastFailure + 10_500 - Date.now()
    if (leaseLeft > 0) await sleep(leaseLeft)
    const healedAt = Date.now()
    const resent = await loadGen.retryUnanswered()
    note("heal", `sent again the ${resent} keys that never got a final answer`)

    // ---- quiescence: every order terminal, outbox empty, stats projector caught up, no webhook delivery pending ----
    const quiescence = await awaitQuiescence(databaseUrl, healedAt, options.quiesceS, note, () => groupLag(kafka, notifierGroup, eventsTopic, EVENTS_PARTITIONS))
    note("check", quiescence.reached
      ? `quiescent ${quiescence.seconds.toFixed(1)} s after healing (orders, outbox and stats after ${quiescence.ordersSeconds?.toFixed(1)} s)`
      : `NOT quiescent within ${options.quiesceS} s (last probe: ${JSON.stringify(quiescence.open)})`)

    // ---- collect and check ----
    const db = await loadDatabase(databaseUrl, notifierGroup)
    const topics = await readTopics(kafka, [eventsTopic, dlqTopic], `chaos-${tag}-checker`, 60_000)
    const verifyRun = await runCommand(process.execPath, [join(ROOT, "dist/cli.js"), "projections", "verify", "--json"], { ...common, LOG_LEVEL: "None" })
    let differences: number | null = null
    try {
      differences = JSON.parse(verifyRun.stdout.slice(verifyRun.stdout.indexOf("{"))).differences
    } catch {
      differences = null
    }
    // the log against the provider's ledger, all of it (a fresh database per schedule; no grace: all has settled)
    const reconcileRun = await runCommand(process.execPath, [join(ROOT, "dist/cli.js"), "reconcile", "--json", "--since", "2000-01-01T00:00:00Z"], {
      ...common,
      RECONCILE_GRACE_MS: "0",
      LOG_LEVEL: "None"
    })
    let reconcileDifferences: number | null = null
    try {
      reconcileDifferences = JSON.parse(reconcileRun.stdout.slice(reconcileRun.stdout.indexOf("{"))).differences.length
    } catch {
      reconcileDifferences = null
    }
    const checks = runChecks(db, {
      exchanges: loadGen.exchanges,
      requests: loadGen.requests,
      hostile: nemesis.injectedHostile,
      topic: topics.messages.get(eventsTopic)!,
      dlqTopic: topics.messages.get(dlqTopic)!,
      topicComplete: topics.complete,
      termResults: nemesis.termResults,
      termDeadlineMs: TERM_DEADLINE_MS,
      leaseMs: 10_000,
      verify: { code: verifyRun.code, differences, output: verifyRun.stdout + verifyRun.stderr },
      reconcile: { code: reconcileRun.code, differences: reconcileDifferences, output: reconcileRun.stdout + reconcileRun.stderr },
      quiescence,
      eventsTopic,
      faultWindows: nemesis.windows,
      apiRoles: new Map(apiUrls.map((url, i) => [url, `api${i + 1}`])),
      clientTimeoutMs: CLIENT_TIMEOUT_MS,
      webhookAttempts: WEBHOOK_RETRY_SCHEDULE.split(",").length
    })
    writeFileSync(join(dir, "exchanges.jsonl"), loadGen.exchanges.map((e) => JSON.stringify({ ...e, body: loadGen.requests.get(e.key)?.body, answer: e.body })).join("\n") + "\n")
    const unexpected = [...roles.values()].flatMap((r) => r.unexpectedExits.map((e) => `${r.spec.name} (code ${e.code}, signal ${e.signal})`))
    if (unexpected.length) note("note", `processes that exited on their own (restarted): ${unexpected.join("; ")}`)
    if (loadGen.notSent) note("note", `${loadGen.notSent} due requests not sent (in-flight bound reached)`)
    result = { seed, durationS: options.durationS, faults: nemesis.counts, timeline, checks, error: null, reportFile: join(dir, "report.md"), replay }
  } catch (e) {
    note("error", String((e as Error).stack ?? e).slice(0, 1500))
    result = { seed, durationS: options.durationS, faults: nemesis?.counts ?? new Map(), timeline, checks: [], error: String(e).slice(0, 500), reportFile: join(dir, "report.md"), replay }
  } finally {
    await nemesis?.stop()
    await observer.stop()
    await injector.stop()
    await Promise.all([...roles.values()].map((r) => r.shutdown()))
  }
  // ---- report ----
  const excerpts = new Map<string, Array<string>>()
  for (const c of result.checks) {
    if (c.ok) continue
    excerpts.set(c.name, [...logExcerpts(logs(), c.samples), "-- the last warnings and errors of each role:", ...errorLines(logs())])
  }
  if (result.error) excerpts.set("runner", errorLines(logs()))
  writeFileSync(result.reportFile, renderSchedule(result, excerpts))
  const failed = result.checks.filter((c) => !c.ok)
  if ((result.error || failed.length > 0 || options.keep) && postgres.cluster) {
    // the run's cluster is removed at its end: what is kept of a failing schedule's database is a dump
    const file = join(dir, `${database}.sql`)
    await postgres.cluster.dump(database).then((sql) => writeFileSync(file, sql), (e) => note("error", `pg_dump ${database}: ${String(e).slice(0, 300)}`))
  } else if (!result.error && failed.length === 0 && !options.keep) {
    await withClient(`${postgres.base}/postgres`, (c) => c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)).catch(() => undefined)
  }
  return result
}
