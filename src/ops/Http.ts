/**
 * Health and metrics, one implementation for both places they are served: with the API (the api role) and
 * alone on OPS_PORT (a process without the api role). Ready means: the database answers with every migration
 * applied, and every other role of this process reports it is doing its work (the worker: its consumer
 * consuming).
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { SqlClient } from "@effect/sql"
import { Effect, Layer } from "effect"
import { Api } from "../http/Api.js"
import { operationalGauges, renderPrometheus } from "../observability/Metrics.js"
import { StatsProjection } from "../projection/StatsProjection.js"
import { Readiness } from "../Readiness.js"
import { type HealthApi, type MetricsApi, NotReady, OpsApi } from "./Api.js"

const health = <E>(handlers: HttpApiBuilder.Handlers.FromGroup<E, never, typeof HealthApi>) =>
  Effect.gen(function*() {
    const readiness = yield* Readiness
    // no database work per request: the checks read the background probes (src/Readiness.ts)
    const ready = Effect.flatMap(readiness.report, (checks) => {
      const failing = Object.entries(checks).filter(([, c]) => c.required && !c.ok)
      return failing.length === 0
        ? Effect.succeed({ status: "ready" as const, checks })
        : Effect.fail(
          new NotReady({
            status: "not_ready",
            message: `not ready: ${failing.map(([name, c]) => `${name} (${c.reason ?? "failing"})`).join(", ")}`,
            checks
          })
        )
    })
    return handlers
      .handle("live", () => Effect.succeed({ status: "ok" as const }))
      .handle("ready", () => ready)
  })

const metrics = (workerGroup: string) => <E>(handlers: HttpApiBuilder.Handlers.FromGroup<E, never, typeof MetricsApi>) =>
  Effect.gen(function*() {
    // the whole context of the process: Kafka too where one of its roles built it (consumer lag)
    const context = yield* Effect.context<SqlClient.SqlClient | StatsProjection>()
    return handlers.handle("metrics", () =>
      operationalGauges(workerGroup).pipe(Effect.flatMap(renderPrometheus), Effect.provide(context)))
  })

export const HealthHttpLive = HttpApiBuilder.group(Api, "health", health)

export const MetricsHttpLive = (workerGroup: string) => HttpApiBuilder.group(Api, "metrics", metrics(workerGroup))

/** The handlers of OpsApi: the ones above. */
export const OpsHandlersLive = (workerGroup: string) =>
  HttpApiBuilder.api(OpsApi).pipe(
    Layer.provide([HttpApiBuilder.group(OpsApi, "health", health), HttpApiBuilder.group(OpsApi, "metrics", metrics(workerGroup))])
  )
