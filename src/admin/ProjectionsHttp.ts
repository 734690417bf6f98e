/** The projection endpoints of the admin API: start a rebuild of `orders`, and the projections' status. */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { Api } from "../http/Api.js"
import { StatsProjection } from "../projection/StatsProjection.js"
import { ordersProjectionCounts } from "../projection/ProjectionCounts.js"
import { RebuildJobs } from "../projection/Rebuild.js"
import { RebuildAlreadyRunning } from "./Api.js"
import { answerStoreErrors } from "../http/Failures.js"

export const ProjectionsHttpLive = HttpApiBuilder.group(Api, "adminProjections", (handlers) =>
  Effect.gen(function*() {
    const jobs = yield* RebuildJobs
    const stats = yield* StatsProjection
    const counts = Effect.provideService(ordersProjectionCounts, SqlClient.SqlClient, yield* SqlClient.SqlClient)
    return handlers
      .handle("rebuildOrders", () =>
        Effect.flatMap(jobs.start, (started) =>
          started
            ? jobs.status
            : Effect.fail(new RebuildAlreadyRunning({ message: "a rebuild of orders is already running" }))))
      .handle("projectionsStatus", () =>
        Effect.gen(function*() {
          const { events, rows } = yield* counts
          return { orders: { rows, events, rebuild: yield* jobs.status }, stats: { lagEvents: yield* stats.lag } }
        }).pipe(answerStoreErrors))
  }))
