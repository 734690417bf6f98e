/**
 * The watchers scenario: concurrent SSE watchers (GET /orders/:id/watch) on the api role, its memory before,
 * with them and after, and that every watcher sees its order PAID once the pipeline runs.
 */
import { dbUrl, log, metricValue, orderBody, psql, round, type Settings, sleep } from "../lib/common.js"
import { type Server, startServer, stopServer } from "../lib/processes.js"
import { peakRssMiB, rssMiB } from "../lib/procstat.js"
import { type Watch, watch } from "../lib/sse.js"

/** The api role's memory: resident set (from /proc) and V8 heap in use (its /metrics), the median of 5 reads. */
const memorySample = async (server: Server) => {
  const rss: Array<number> = []
  const heap: Array<number> = []
  for (let i = 0; i < 5; i++) {
    rss.push(rssMiB(server.child.pid!))
    const metrics = await fetch(`${server.url}/metrics`).then((r) => r.text()).catch(() => "")
    heap.push(metricValue(metrics, "nodejs_heap_size_used_bytes") / 2 ** 20)
    await sleep(200)
  }
  const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  return { rssMiB: median(rss), heapUsedMiB: median(heap) }
}

/**
 * 1,000 concurrent watchers (GET /orders/:id/watch, SSE) on the api role, one per live order: the api role's
 * memory before and with them all connected, per watcher; then the pipeline (relay, worker, projector in a
 * process of their own, and the provider) pays the orders and every watcher must see its OrderPaid and its
 * stream end. WATCH_MAX_CONNECTIONS is set to the watcher count: one more watch must be refused (503).
 */
export const runWatchers = async (settings: Settings, brokers: string, watcherCount: number) => {
  log(`scenario watchers (${watcherCount})`)
  const database = `${settings.benchDb}_watchers`
  psql(dbUrl("postgres"), "-c", `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
  const stamp = Date.now()
  const env = {
    DATABASE_URL: dbUrl(database),
    KAFKA_BROKERS: brokers,
    KAFKA_TOPIC_PREFIX: `bench-watchers-${stamp}-`,
    PORT: "3206",
    HOST: "127.0.0.1",
    PROVIDER_PORT: "3207",
    PAYMENT_PROVIDER_URL: "http://127.0.0.1:3207",
    PROVIDER_LATENCY_MS: String(settings.providerLatencyMs),
    PAYMENT_WORKER_GROUP: `bench-worker-watchers-${stamp}`,
    WATCH_MAX_CONNECTIONS: String(watcherCount)
  }
  const api = await startServer("watchers-api", [...settings.nodeFlags, "dist/main.js", "api"], env, "http://127.0.0.1:3206/health/ready")
  const started: Array<Server> = [api]
  const watches: Array<Watch> = []
  try {
    // the orders, placed before anything pays them: every watcher watches a live (CREATED) order
    const ids: Array<string> = []
    for (let i = 0; i < watcherCount; i += 25) {
      const batch = await Promise.all(Array.from({ length: Math.min(25, watcherCount - i) }, (_, j) =>
        fetch(`${api.url}/orders`, { method: "POST", headers: { "content-type": "application/json" }, body: orderBody(i + j) })
          .then((r) => r.json() as Promise<{ orderId: string }>)))
      ids.push(...batch.map((b) => b.orderId))
    }
    await sleep(2000)
    const before = await memorySample(api)
    const connectStart = Date.now()
    for (const id of ids) watches.push(watch(`${api.url}/orders/${id}/watch`))
    await Promise.all(watches.map((w) => w.firstEvent))
    const connectSeconds = (Date.now() - connectStart) / 1000
    const connected = watches.filter((w) => w.status === 200 && w.events.length > 0).length
    const extra = watch(`${api.url}/orders/${ids[0]}/watch`)
    await extra.ended
    await sleep(2000)
    const during = await memorySample(api)
    log(`watchers: ${connected} connected in ${round(connectSeconds)} s; one more → ${extra.status}; api RSS ${round(before.rssMiB)} → ${round(during.rssMiB)} MiB, heap ${round(before.heapUsedMiB)} → ${round(during.heapUsedMiB)} MiB`)

    const payStart = Date.now()
    started.push(await startServer("watchers-provider", ["dist/main.js", "payment-provider"], env, "http://127.0.0.1:3207/control"))
    // a heap of its own size: a backlog of 1,000 orders at once has run this process out of a 256 MB heap
    // (docs/PERFORMANCE.md "Latest results", the split layout); what is measured here is the api role
    started.push(await startServer("watchers-pipeline", ["--max-old-space-size=1024", "dist/main.js", "relay,worker,projector"], env, "http://127.0.0.1:3207/control"))
    await Promise.race([Promise.all(watches.map((w) => w.ended)), sleep(180_000)])
    const paidSeconds = (Date.now() - payStart) / 1000
    const sawPaid = watches.filter((w) => w.events[w.events.length - 1] === "OrderPaid").length
    await sleep(2000)
    const after = await memorySample(api)
    const perWatcherKiB = (x: number, y: number) => round(((y - x) * 1024) / Math.max(1, connected), 1)
    const result = {
      watchers: watcherCount,
      connected,
      connectSeconds,
      beyondLimitStatus: extra.status,
      sawPaid,
      paidSeconds,
      apiMemory: { before, during, after },
      perWatcherKiB: { rss: perWatcherKiB(before.rssMiB, during.rssMiB), heapUsed: perWatcherKiB(before.heapUsedMiB, during.heapUsedMiB) },
      peakRssMiB: peakRssMiB(api.child.pid!)
    }
    log(`watchers: ${sawPaid} of ${watcherCount} saw OrderPaid within ${round(paidSeconds)} s; per watcher RSS ${result.perWatcherKiB.rss} KiB, heap ${result.perWatcherKiB.heapUsed} KiB; after they ended RSS ${round(after.rssMiB)} MiB, heap ${round(after.heapUsedMiB)} MiB`)
    return result
  } finally {
    for (const w of watches) w.close()
    for (const s of started.reverse()) await stopServer(s)
  }
}

export type WatchersResult = Awaited<ReturnType<typeof runWatchers>>
