/** The composed API's handlers: every feature's group, with what each needs from the HTTP settings. */
import { HttpApiBuilder } from "@effect/platform"
import { Layer, type Redacted } from "effect"
import { AdminAuthLive } from "../admin/Auth.js"
import { DeadLettersHttpLive } from "../admin/DeadLettersHttp.js"
import { ProjectionsHttpLive } from "../admin/ProjectionsHttp.js"
import { HealthHttpLive, MetricsHttpLive } from "../ops/Http.js"
import { OrdersHttpLive, type OrdersHttpSettings } from "../orders/Http.js"
import { StatsHttpLive } from "../stats/Http.js"
import { Api } from "./Api.js"

export interface HttpSettings extends OrdersHttpSettings {
  readonly adminToken: Redacted.Redacted<string>
  /** Consumer group whose lag /metrics reports. */
  readonly workerGroup: string
}

export const HttpHandlersLive = (settings: HttpSettings) =>
  HttpApiBuilder.api(Api).pipe(
    Layer.provide([
      OrdersHttpLive(settings),
      HealthHttpLive,
      Layer.provide(Layer.mergeAll(DeadLettersHttpLive, ProjectionsHttpLive), AdminAuthLive(settings.adminToken)),
      StatsHttpLive,
      MetricsHttpLive(settings.workerGroup)
    ])
  )
