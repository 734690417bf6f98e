/**
 * /metrics is clean Prometheus text: `promtool check metrics` (Debian's `prometheus` package; .ci/run installs
 * it) passes with no warning on a live system, and the series an operator needs are there: HTTP duration by
 * route and status, consumer lag per partition, relay and projection lag, process and Node runtime metrics.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Metric, MetricBoundaries } from "effect"
import { spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { renderEffectMetrics } from "../src/observability/Metrics.js"
import { promtool } from "./support/promtool.js"
import { call, postJson } from "./support/TestApp.js"
import { TestSystem } from "./support/TestSystem.js"
import { waitFor } from "./support/waitFor.js"

const dashboardQueries = (): Array<string> => {
  const dashboard = JSON.parse(readFileSync(new URL("../docs/grafana-dashboard.json", import.meta.url), "utf8"))
  return dashboard.panels.flatMap((p: { targets: Array<{ expr: string }> }) =>
    p.targets.map((t) => t.expr.replaceAll("$__rate_interval", "5m").replaceAll("$job", ".*"))
  )
}

describe("Effect metrics rendered by Prometheus conventions", () => {
  it.effect("incremental counters end in _total, a counter that goes down is a gauge, milliseconds become seconds", () =>
    Effect.gen(function*() {
      const up = Metric.counter("metrics_test_things", { incremental: true })
      const upDown = Metric.counter("metrics_test_active")
      const millis = Metric.histogram("metrics_test_lifetimes", MetricBoundaries.fromIterable([1, 1000])).pipe(
        Metric.tagged("time_unit", "milliseconds")
      )
      yield* Metric.incrementBy(up, 2)
      yield* Metric.incrementBy(upDown, 3)
      yield* Metric.incrementBy(upDown, -1)
      yield* Metric.update(millis, 500)
      const text = renderEffectMetrics(yield* Metric.snapshot).join("\n") + "\n"
      assert.include(text, "# TYPE metrics_test_things_total counter\nmetrics_test_things_total 2")
      assert.include(text, "# TYPE metrics_test_active gauge\nmetrics_test_active 2")
      assert.include(text, "# TYPE metrics_test_lifetimes_seconds histogram")
      assert.include(text, `metrics_test_lifetimes_seconds_bucket{le="1"} 1`)
      assert.include(text, "metrics_test_lifetimes_seconds_sum 0.5")
      assert.notInclude(text, "time_unit")
      const checked = promtool(text)
      assert.strictEqual(checked.output, "")
      assert.strictEqual(checked.status, 0)
    }))
})

describe("GET /metrics on a live system", () => {
  layer(TestSystem("metrics"), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("passes promtool with no warning and has the series an operator needs", () =>
      Effect.gen(function*() {
        const placed = yield* postJson("/orders", { userId: "8f0e2d0a-3f5e-4a7b-9c1d-2e3f4a5b6c7d", amount: "1.00", currency: "EUR" })
        assert.strictEqual(placed.status, 201)
        yield* waitFor("PAID", Effect.map(call("GET", `/orders/${placed.body.orderId}`), (r) => r.body.state), (s) => s === "PAID")
        assert.strictEqual((yield* call("GET", "/orders/not-an-id")).status, 400)
        assert.strictEqual((yield* call("GET", "/no/such/path/123")).status, 404)

        const text = String((yield* call("GET", "/metrics")).body)
        const checked = promtool(text)
        assert.strictEqual(checked.output, "", checked.output)
        assert.strictEqual(checked.status, 0)

        // HTTP duration by route template and status (an unknown path is `other`, never itself)
        assert.match(text, /http_request_duration_seconds_count\{method="POST",route="\/orders",status="201"\} 1/)
        assert.match(text, /http_request_duration_seconds_count\{method="GET",route="\/orders\/:orderId",status="400"\} 1/)
        assert.match(text, /http_request_duration_seconds_count\{method="GET",route="other",status="404"\} 1/)
        assert.notInclude(text, "/no/such/path")
        // consumer lag per partition of the suite's topic (TestSystem makes 3)
        for (const p of ["0", "1", "2"]) assert.match(text, new RegExp(`consumer_lag_messages\\{group="[^"]+",topic="[^"]+",partition="${p}"\\} \\d+`))
        for (
          const series of [
            "relay_lag_seconds ", "outbox_unpublished_rows ", "projection_lag_events{projection=\"stats\"} ",
            "table_rows_estimate{table=\"outbox\"} ", "effect_fiber_started_total ", "effect_fiber_active ",
            "process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_open_fds ",
            "nodejs_eventloop_lag_seconds ", "nodejs_heap_size_used_bytes ", "payments_succeeded_total 1"
          ]
        ) assert.include(text, `\n${series}`)

        // the Grafana dashboard (docs/) queries only series this endpoint serves, in valid PromQL
        const exprs = dashboardQueries()
        const rules = ["groups:", "- name: dashboard", "  rules:", ...exprs.flatMap((e, i) => [`  - record: dashboard:q${i}`, `    expr: ${JSON.stringify(e)}`])]
        const file = join(mkdtempSync(join(tmpdir(), "dashboard-")), "rules.yml")
        writeFileSync(file, rules.join("\n") + "\n")
        const parsed = spawnSync("promtool", ["check", "rules", file], { encoding: "utf8" })
        assert.strictEqual(parsed.status, 0, `${parsed.stdout}${parsed.stderr}`)
        const families = new Set([...text.matchAll(/^# TYPE (\S+) (\S+)/gm)].flatMap(([, n, type]) =>
          type === "histogram" ? [`${n}_bucket`, `${n}_sum`, `${n}_count`] : [n!]
        ))
        // series that appear once their first sample exists (a GC, a retention pass in a worker role)
        const lazy = /^(nodejs_gc_duration_seconds|retention_)/
        for (const e of exprs) {
          for (const [m] of e.matchAll(/\b[a-z][a-z0-9_]*_(?:total|seconds|bytes|messages|events|rows|estimate|fds|active|count|sum|bucket)\b/g)) {
            if (!lazy.test(m)) assert.isTrue(families.has(m), `dashboard queries ${m}, which /metrics does not serve`)
          }
        }
      }))
  })
})
