/**
 * Operations endpoints: liveness and readiness probes (503 not ready), and the Prometheus metrics. The api role
 * serves them with the rest of the API; a process without the api role serves them alone, as `OpsApi`, on
 * OPS_PORT (src/Roles.ts), so every process can be probed and scraped.
 */
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { type ErrorExample, errorExample } from "../http/ErrorExamples.js"
import { InternalError, ServiceUnavailable } from "../http/Errors.js"
import { doc, NoParams } from "../http/Spec.js"

export class NotReady extends Schema.TaggedError<NotReady>()("NotReady", {
  message: Schema.String
}, HttpApiSchema.annotations({ status: 503 })) {}

export class HealthApi extends HttpApiGroup.make("health").annotateContext(OpenApi.annotations({ description: "Liveness and readiness probes." }))
  .add(HttpApiEndpoint.get("live", "/health/live").annotateContext(doc("Liveness", "200 while the process runs.")).setUrlParams(NoParams).addSuccess(Schema.Struct({ status: Schema.Literal("ok") })))
  .add(
    HttpApiEndpoint.get("ready", "/health/ready").annotateContext(doc("Readiness", "200 once the database answers with every migration applied and every role of the process reports it is doing its work (the checks are listed), else 503.")).setUrlParams(NoParams)
      .addSuccess(Schema.Struct({
        status: Schema.Literal("ready"),
        /** the checks the roles of this process registered (none for the api alone) */
        checks: Schema.Array(Schema.Struct({ name: Schema.String, ok: Schema.Boolean }))
      }))
      .addError(NotReady)
  )
{}

export class MetricsApi extends HttpApiGroup.make("metrics").annotateContext(OpenApi.annotations({ description: "Metrics for Prometheus." }))
  .add(HttpApiEndpoint.get("metrics", "/metrics").annotateContext(doc("Prometheus metrics", "Every metric of the process in the Prometheus text exposition format.")).setUrlParams(NoParams).addSuccess(HttpApiSchema.Text()))
{}

/** What a process without the api role serves on OPS_PORT: the same groups, answered by the same handlers. */
export class OpsApi extends HttpApi.make("ops").add(HealthApi).add(MetricsApi)
  // the failure middleware answers these for any endpoint, as on the api's port
  .addError(ServiceUnavailable)
  .addError(InternalError)
{}

export const opsErrorExamples: ReadonlyArray<ErrorExample> = [
  errorExample(NotReady, new NotReady({ message: "migrations pending: 11 of 12 applied" }), "not ready to serve")
]
