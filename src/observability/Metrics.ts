/**
 * Metrics in Prometheus text format for GET /metrics: every Effect metric of the process (counters, gauges,
 * histograms defined as constants beside the code they count), plus gauges read at scrape time: relay lag
 * (age of the oldest unpublished outbox row) and consumer lag (messages behind, per group).
 */
import { Effect, Metric, MetricBoundaries, MetricState } from "effect"

export const httpLatency = Metric.histogram(
  "http_request_duration_seconds",
  MetricBoundaries.exponential({ start: 0.0005, factor: 2, count: 14 }),
  "HTTP request latency"
)

const name = (n: string) => n.replace(/[^a-zA-Z0-9_:]/g, "_")
const labels = (tags: ReadonlyArray<{ key: string; value: string }>, extra: Record<string, string> = {}) => {
  const all = [...tags.map((t) => [t.key, t.value] as const), ...Object.entries(extra)]
  return all.length === 0 ? "" : `{${all.map(([k, v]) => `${name(k)}="${v.replace(/["\\\n]/g, "\\$&")}"`).join(",")}}`
}

/** Prometheus exposition of all Effect metrics plus the given gauges. */
export const renderPrometheus = (gauges: ReadonlyArray<{ name: string; help: string; value: number; labels?: Record<string, string> }>) =>
  Effect.map(Metric.snapshot, (pairs) => {
    const lines: Array<string> = []
    const seen = new Set<string>()
    const header = (n: string, type: string, help: string | undefined) => {
      if (seen.has(n)) return
      seen.add(n)
      lines.push(`# HELP ${n} ${help ?? n}`, `# TYPE ${n} ${type}`)
    }
    for (const { metricKey, metricState } of pairs) {
      const n = name(metricKey.name)
      const description = metricKey.description._tag === "Some" ? metricKey.description.value : undefined
      if (MetricState.isCounterState(metricState)) {
        header(n, "counter", description)
        lines.push(`${n}${labels(metricKey.tags)} ${metricState.count}`)
      } else if (MetricState.isGaugeState(metricState)) {
        header(n, "gauge", description)
        lines.push(`${n}${labels(metricKey.tags)} ${metricState.value}`)
      } else if (MetricState.isHistogramState(metricState)) {
        header(n, "histogram", description)
        for (const [bound, count] of metricState.buckets) {
          lines.push(`${n}_bucket${labels(metricKey.tags, { le: Number.isFinite(bound) ? String(bound) : "+Inf" })} ${count}`)
        }
        if (!metricState.buckets.some(([b]) => !Number.isFinite(b))) {
          lines.push(`${n}_bucket${labels(metricKey.tags, { le: "+Inf" })} ${metricState.count}`)
        }
        lines.push(`${n}_sum${labels(metricKey.tags)} ${metricState.sum}`, `${n}_count${labels(metricKey.tags)} ${metricState.count}`)
      }
    }
    for (const g of gauges) {
      header(name(g.name), "gauge", g.help)
      lines.push(`${name(g.name)}${labels([], g.labels)} ${g.value}`)
    }
    return lines.join("\n") + "\n"
  })
