/**
 * HTTP request duration by method, route and status (`http_request_duration_seconds`), recorded by a
 * middleware of the API server (src/http/Server.ts) and rendered with the other metrics (Metrics.ts).
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Effect, Metric, MetricBoundaries, MetricLabel } from "effect"

export const httpLatency = Metric.histogram(
  "http_request_duration_seconds",
  MetricBoundaries.exponential({ start: 0.0005, factor: 2, count: 14 }),
  "HTTP request duration by method, route (the API's path template) and status"
)

/** `METHOD path` → route template of the API's endpoints (`/orders/:id`); anything else is `other`. */
export const routeMatcher = (api: HttpApi.HttpApi.Any) => {
  const routes: Array<{ method: string; template: string; pattern: RegExp }> = []
  HttpApi.reflect(api as HttpApi.HttpApi<string, any, any, any>, {
    onGroup: () => {},
    onEndpoint: ({ endpoint }) => {
      const source = endpoint.path.split("/").map((s) => (s.startsWith(":") ? "[^/]+" : s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
      routes.push({ method: endpoint.method, template: endpoint.path, pattern: new RegExp(`^${source.join("/")}/?$`) })
    }
  })
  // static paths first, so /orders/stats-like literals win over /orders/:id
  routes.sort((a, b) => a.template.split(":").length - b.template.split(":").length)
  return (method: string, path: string): string => {
    for (const r of routes) if (r.method === method && r.pattern.test(path)) return r.template
    if (path === "/docs" || path.startsWith("/docs/")) return "/docs"
    return "other"
  }
}

/**
 * Middleware recording every request's duration in `http_request_duration_seconds{method,route,status}`.
 * The route is the template of the API endpoint the path matches (bounded label values; an unknown path
 * is `other`), matched after the response so 404s of garbage paths cannot explode the series count.
 */
export const measureHttp = (api: HttpApi.HttpApi.Any) => {
  const route = routeMatcher(api)
  const tagged = new Map<string, Metric.Metric.Histogram<number>>()
  const histogram = (method: string, template: string, status: number) => {
    const key = `${method} ${template} ${status}`
    let h = tagged.get(key)
    if (h === undefined) {
      h = Metric.taggedWithLabels(httpLatency, [
        MetricLabel.make("method", method),
        MetricLabel.make("route", template),
        MetricLabel.make("status", String(status))
      ])
      tagged.set(key, h)
    }
    return h
  }
  return HttpMiddleware.make((app) =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const start = process.hrtime.bigint()
      const record = (status: number) =>
        Effect.suspend(() => {
          const path = request.url.split("?")[0] ?? "/"
          return Metric.update(histogram(request.method, route(request.method, path), status), Number(process.hrtime.bigint() - start) / 1e9)
        })
      return app.pipe(
        Effect.tap((response) => record(response.status)),
        // a failure reaching the server is answered by the platform's own mapping (RouteNotFound → 404, …)
        Effect.onError((cause) => Effect.flatMap(HttpServerError.causeResponse(cause), ([response]) => record(response.status)))
      )
    })
  )
}
