/**
 * Health and metrics. Ready means: the database answers with every migration applied, and every other role
 * of this process reports it is doing its work (the worker: its consumer consuming).
 */
import { HttpApiBuilder } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { Api } from "../http/Api.js"
import { Kafka } from "../kafka/Kafka.js"
import { operationalGauges, renderPrometheus } from "../observability/Metrics.js"
import { StatsProjection } from "../projection/StatsProjection.js"
import { Readiness } from "../Readiness.js"
import { appliedMigrationId, latestMigrationId } from "../Sql.js"
import { NotReady } from "./Api.js"

export const HealthHttpLive = HttpApiBuilder.group(Api, "health", (handlers) =>
  Effect.gen(function*() {
    const applied = Effect.provideService(appliedMigrationId, SqlClient.SqlClient, yield* SqlClient.SqlClient)
    const latest = yield* latestMigrationId
    const readiness = yield* Readiness
    const roles = Effect.flatMap(readiness.report, (checks) => {
      const failing = checks.filter((c) => !c.ok)
      return failing.length === 0
        ? Effect.succeed({ status: "ready" as const })
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
  }))

export const MetricsHttpLive = (workerGroup: string) =>
  HttpApiBuilder.group(Api, "metrics", (handlers) =>
    Effect.gen(function*() {
      const context = yield* Effect.context<SqlClient.SqlClient | Kafka | StatsProjection>()
      return handlers.handle("metrics", () =>
        operationalGauges(workerGroup).pipe(Effect.flatMap(renderPrometheus), Effect.provide(context)))
    }))
