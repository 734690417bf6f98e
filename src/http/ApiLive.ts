/** The composed API's handlers: every feature's group, each reading its own settings (`Config`) when built. */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect, Layer } from "effect"
import { AdminAuthLive } from "../admin/Auth.js"
import { DeadLettersHttpLive } from "../admin/DeadLettersHttp.js"
import { ProjectionsHttpLive } from "../admin/ProjectionsHttp.js"
import { ReconciliationHttpLive } from "../admin/ReconciliationHttp.js"
import { WebhooksHttpLive } from "../admin/WebhooksHttp.js"
import { WorkerGroup } from "../Config.js"
import { HealthHttpLive, MetricsHttpLive } from "../ops/Http.js"
import { OrdersHttpLive } from "../orders/Http.js"
import { StatsHttpLive } from "../stats/Http.js"
import { Api } from "./Api.js"

export const HttpHandlersLive = HttpApiBuilder.api(Api).pipe(
  Layer.provide([
    OrdersHttpLive,
    HealthHttpLive,
    Layer.provide(Layer.mergeAll(DeadLettersHttpLive, ProjectionsHttpLive, ReconciliationHttpLive, WebhooksHttpLive), AdminAuthLive),
    StatsHttpLive,
    // /metrics reports the lag of the worker's consumer group
    Layer.unwrapEffect(Effect.map(Effect.orDie(WorkerGroup), MetricsHttpLive))
  ])
)
