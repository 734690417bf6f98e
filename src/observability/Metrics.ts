/**
 * Metrics in Prometheus text format for GET /metrics, clean under `promtool check metrics` (invariant 10: what
 * happens is counted where an operator looks):
 *   - every Effect metric of the process (counters, gauges, histograms defined as constants beside the code
 *     they count), rendered by Prometheus conventions: a monotonic counter ends in `_total`, a counter that
 *     can go down (Effect's `effect_fiber_active`) is a gauge, a histogram tagged `time_unit=milliseconds`
 *     (Effect's `effect_fiber_lifetimes`) is converted to seconds;
 *   - process and Node runtime metrics (CPU, RSS, heap, open fds, event-loop lag, GC) from prom-client's
 *     default collectors, in a registry of our own;
 *   - HTTP request durations by route and status (HttpMetrics.ts);
 *   - gauges read at scrape time (relay lag, consumer lag per partition, projection lag, table sizes):
 *     `operationalGauges`.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Metric, MetricKey, MetricKeyType, type MetricPair, MetricState, Option } from "effect"
import client from "prom-client"
import { Kafka } from "../kafka/Kafka.js"
import { StatsProjection } from "../projection/StatsProjection.js"

/** Failures to read a scrape-time gauge (the series is left out of that scrape), by source. */
export const scrapeErrors = Metric.counter("metrics_scrape_errors_total", {
  description: "gauges that could not be read at scrape time, by source",
  incremental: true
})

// ---------------------------------------------------------------------------------------------------------
// Process and runtime metrics

let processRegistry: client.Registry | undefined
/** Gauges prom-client names `*_total` although they are not counters (promtool: "non-counter metrics should
 * not have _total suffix"); the same numbers stay available as `nodejs_active_handles` / `_requests` /
 * `_resources` by type. */
const misnamed = ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]

/** prom-client's default Node collectors, started on first use (they keep an event-loop delay monitor). */
export const runtimeRegistry = (): client.Registry => {
  if (processRegistry === undefined) {
    const registry = new client.Registry()
    client.collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 })
    for (const name of misnamed) registry.removeSingleMetric(name)
    processRegistry = registry
  }
  return processRegistry
}

// ---------------------------------------------------------------------------------------------------------
// Rendering

export interface Gauge {
  readonly name: string
  readonly help: string
  readonly value: number
  readonly labels?: Record<string, string>
}

const name = (n: string) => n.replace(/[^a-zA-Z0-9_:]/g, "_")
const escapeLabel = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, "\\\"")
const escapeHelp = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")
const labels = (tags: ReadonlyArray<{ key: string; value: string }>, extra: Record<string, string> = {}) => {
  const all = [...tags.map((t) => [t.key, t.value] as const), ...Object.entries(extra)]
  return all.length === 0 ? "" : `{${all.map(([k, v]) => `${name(k)}="${escapeLabel(v)}"`).join(",")}}`
}
const num = (n: number) => (Number.isNaN(n) ? "NaN" : n === Infinity ? "+Inf" : n === -Infinity ? "-Inf" : String(n))

/** Effect metrics as Prometheus text, by the conventions in the module header. */
export const renderEffectMetrics = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): Array<string> => {
  const lines: Array<string> = []
  const seen = new Set<string>()
  const header = (n: string, type: string, help: string | undefined) => {
    if (seen.has(n)) return
    seen.add(n)
    lines.push(`# HELP ${n} ${escapeHelp(help ?? n.replace(/_/g, " "))}`, `# TYPE ${n} ${type}`)
  }
  for (const pair of pairs) {
    const metricKey = pair.metricKey as MetricKey.MetricKey<MetricKeyType.MetricKeyType<unknown, unknown>>
    const metricState = pair.metricState
    const base = name(metricKey.name)
    const help = Option.getOrUndefined(metricKey.description)
    if (MetricState.isCounterState(metricState)) {
      const keyType = metricKey.keyType as MetricKeyType.MetricKeyType.Counter<number | bigint>
      if (MetricKeyType.isCounterKey(keyType) && !keyType.incremental) {
        // a counter that can go down is a gauge
        header(base, "gauge", help)
        lines.push(`${base}${labels(metricKey.tags)} ${metricState.count}`)
      } else {
        const n = base.endsWith("_total") ? base : `${base}_total`
        header(n, "counter", help)
        lines.push(`${n}${labels(metricKey.tags)} ${metricState.count}`)
      }
    } else if (MetricState.isGaugeState(metricState)) {
      header(base, "gauge", help)
      lines.push(`${base}${labels(metricKey.tags)} ${metricState.value}`)
    } else if (MetricState.isHistogramState(metricState)) {
      const millis = metricKey.tags.some((t) => t.key === "time_unit" && t.value === "milliseconds")
      const n = millis ? `${base}_seconds` : base
      const tags = millis ? metricKey.tags.filter((t) => t.key !== "time_unit") : metricKey.tags
      const scale = millis ? 1 / 1000 : 1
      header(n, "histogram", help)
      let infinite = false
      for (const [bound, count] of metricState.buckets) {
        infinite ||= !Number.isFinite(bound)
        lines.push(`${n}_bucket${labels(tags, { le: Number.isFinite(bound) ? String(bound * scale) : "+Inf" })} ${count}`)
      }
      if (!infinite) lines.push(`${n}_bucket${labels(tags, { le: "+Inf" })} ${metricState.count}`)
      lines.push(`${n}_sum${labels(tags)} ${metricState.sum * scale}`, `${n}_count${labels(tags)} ${metricState.count}`)
    } else if (MetricState.isFrequencyState(metricState)) {
      const n = base.endsWith("_total") ? base : `${base}_total`
      header(n, "counter", help)
      for (const [value, count] of metricState.occurrences) lines.push(`${n}${labels(metricKey.tags, { value })} ${count}`)
    } else if (MetricState.isSummaryState(metricState)) {
      header(base, "summary", help)
      for (const [q, value] of metricState.quantiles) {
        lines.push(`${base}${labels(metricKey.tags, { quantile: String(q) })} ${num(Option.getOrElse(value, () => NaN))}`)
      }
      lines.push(`${base}_sum${labels(metricKey.tags)} ${metricState.sum}`, `${base}_count${labels(metricKey.tags)} ${metricState.count}`)
    }
  }
  return lines
}

const renderGauges = (gauges: ReadonlyArray<Gauge>): Array<string> => {
  const lines: Array<string> = []
  const seen = new Set<string>()
  for (const g of gauges) {
    const n = name(g.name)
    if (!seen.has(n)) {
      seen.add(n)
      lines.push(`# HELP ${n} ${escapeHelp(g.help)}`, `# TYPE ${n} gauge`)
    }
    lines.push(`${n}${labels([], g.labels)} ${num(g.value)}`)
  }
  return lines
}

/** Prometheus exposition: all Effect metrics, the Node process/runtime metrics, then the given gauges. */
export const renderPrometheus = (gauges: ReadonlyArray<Gauge>) =>
  Effect.gen(function*() {
    const effectLines = renderEffectMetrics(yield* Metric.snapshot)
    const runtime = yield* Effect.promise(() => runtimeRegistry().metrics())
    return [...effectLines, runtime.trimEnd(), ...renderGauges(gauges)].filter((l) => l.length > 0).join("\n") + "\n"
  })

// ---------------------------------------------------------------------------------------------------------
// Gauges read at scrape time

/** Tables whose size the retention job bounds (and the log, for scale): estimated rows from PostgreSQL's statistics. */
const sizedTables = ["events", "outbox", "inbox", "dead_letters", "idempotency_keys"]

const scrapeFailed = (source: string) => (error: unknown) =>
  Effect.logWarning("a metric could not be read").pipe(
    Effect.annotateLogs({ type: "METRICS_SCRAPE_ERROR", source, error: String(error instanceof Error ? error.message : error) }),
    Effect.zipRight(Metric.increment(Metric.tagged(scrapeErrors, "source", source))),
    Effect.as([] as Array<Gauge>)
  )

/**
 * Relay lag (age of the oldest unpublished outbox row), unpublished rows, consumer lag of the worker group per
 * partition (in a process that has a broker client: not a projector or provider alone), the stats projection's
 * lag and table sizes. A source that cannot be read (the broker down) is left out of this scrape, logged and
 * counted in `metrics_scrape_errors_total{source}`.
 */
export const operationalGauges = (workerGroup: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const kafka = yield* Effect.serviceOption(Kafka)
    const stats = yield* StatsProjection
    // every source's error series exists from the first scrape (at 0), so dashboards and alerts see it
    for (const source of ["relay", "tables", "kafka", "projection"]) {
      yield* Metric.incrementBy(Metric.tagged(scrapeErrors, "source", source), 0)
    }
    const relay = yield* sql<{ age: number | null; pending: number }>`
      SELECT extract(epoch FROM now() - min(created_at))::float8 AS age, count(*)::int AS pending
      FROM outbox WHERE published_at IS NULL`.pipe(
      Effect.map(([row]): Array<Gauge> => [
        { name: "relay_lag_seconds", help: "age of the oldest unpublished outbox row (0: none)", value: row?.age ?? 0 },
        { name: "outbox_unpublished_rows", help: "outbox rows not yet published to Kafka", value: row?.pending ?? 0 }
      ]),
      Effect.catchAll(scrapeFailed("relay"))
    )
    const tables = yield* sql<{ table: string; rows: number }>`
      SELECT relname AS table, n_live_tup::float8 AS rows FROM pg_stat_user_tables WHERE relname IN ${sql.in(sizedTables)}`.pipe(
      Effect.map((rows) =>
        rows.map((r): Gauge => ({
          name: "table_rows_estimate",
          help: "rows of a table as PostgreSQL's statistics estimate them (n_live_tup)",
          value: Number(r.rows),
          labels: { table: r.table }
        }))
      ),
      Effect.catchAll(scrapeFailed("tables"))
    )
    const consumer = Option.isNone(kafka) ? [] : yield* kafka.value.lagByPartition(workerGroup, kafka.value.topics.orderEvents).pipe(
      Effect.map((partitions) =>
        partitions.map((p): Gauge => ({
          name: "consumer_lag_messages",
          help: "messages of a partition the consumer group has not committed yet",
          value: p.lag,
          labels: { group: workerGroup, topic: kafka.value.topics.orderEvents, partition: String(p.partition) }
        }))
      ),
      Effect.catchAll(scrapeFailed("kafka"))
    )
    const projection = yield* stats.lag.pipe(
      Effect.map((lag): Array<Gauge> => [
        { name: "projection_lag_events", help: "events the async projection has not applied yet", value: lag, labels: { projection: "stats" } }
      ]),
      Effect.catchAllCause((cause) => scrapeFailed("projection")(cause))
    )
    return [...relay, ...consumer, ...projection, ...tables]
  })
