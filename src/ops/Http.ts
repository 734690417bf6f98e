/**
 * Health and metrics, one implementation for both places they are served: with the API (the api role) and
 * alone on OPS_PORT (a process without the api role). Ready means: the database answers with every migration
 * applied, and every other role of this process reports it is doing its work (the worker: its consumer
 * consuming).
 */
import { HttpApiBuilder } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { Effect, Layer } from "effect"
import { Api } from "../http/Api.js"
import { operationalGauges, renderPrometheus } from "../observability/Metrics.js"
import { StatsProjection } from "../projection/StatsProjection.js"
import { Readiness } from "../Readiness.js"
import { appliedMigrationId, latestMigrationId } from "../Sql.js"
import { type HealthApi, type MetricsApi, NotReady, OpsApi } from "./Api.js"

const health = <E>(handlers: HttpApiBuilder.Handlers.FromGroup<E, never, typeof HealthApi>) =>
  Effect.gen(function*() {
    const applied = Effect.provideService(appliedMigrationId, SqlClient.SqlClient, yield* SqlClient.SqlClient)
    const latest = yield* latestMigrationId
    const readiness = yield* Readiness
    const roles = Effect.flatMap(readiness.report, (checks) => {
      const failing = checks.filter((c) => !c.ok)
      return failing.length === 0
        ? Effect.succeed({ status: "ready" as const, checks: checks.map(({ name, ok }) => ({ name, ok })) })
        : Effect.fail(new NotReady({ message: `not ready: ${failing.map((c) => `${c.name} ${JSON.stringify(c.detail ?? null)}`).join("; ")}` }))
    })
    return handlers
      .handle("live", () => Effect.succeed({ status: "ok" as const }))
      .handle("ready", () =>
        applied.pipe(
          Effect.flatMap((n) =>
            n >= latest ? roles : Effect.fail(new NotReady({ message: `migrations pending: ${n} of ${latest} applied` }))),
          Effect.catchTag("SqlError", () => Effect.fail(new NotReady({ message: "the database does not answer" })))
        ))
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
