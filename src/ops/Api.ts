/**
 * Operations endpoints: liveness and readiness probes (503 not ready), and the Prometheus metrics. The api role
 * serves them with the rest of the API; a process without the api role serves them alone, as `OpsApi`, on
 * OPS_PORT (src/Roles.ts), so every process can be probed and scraped.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { type ErrorExample, errorExample } from "../http/ErrorExamples.js"
import { InternalError, ServiceUnavailable } from "../http/Errors.js"
import { doc, NoParams } from "../http/Spec.js"

/** One dependency of the process as /health/ready reports it (src/Readiness.ts). */
export const ReadinessCheck = Schema.Struct({
  ok: Schema.Boolean,
  /** whether it decides readiness (false: shown only, e.g. the broker of the api, which needs it for /metrics only) */
  required: Schema.Boolean,
  reason: Schema.optional(Schema.String),
  /** how old the background probe's verdict is (database, broker) */
  ageMs: Schema.optional(Schema.Number),
  detail: Schema.optional(Schema.Unknown)
})

/** By name: `database` (every process), `broker` (a process with Kafka), `consumer` (the worker). */
export const ReadinessChecks = Schema.Record({ key: Schema.String, value: ReadinessCheck })

export class NotReady extends Schema.TaggedError<NotReady>()("NotReady", {
  status: Schema.Literal("not_ready"),
  message: Schema.String,
  checks: ReadinessChecks
}, HttpApiSchema.annotations({ status: 503 })) {}

export class HealthApi extends HttpApiGroup.make("health").annotateContext(OpenApi.annotations({ description: "Liveness and readiness probes." }))
  .add(HttpApiEndpoint.get("live", "/health/live").annotateContext(doc("Liveness", "200 while the process runs.")).setUrlParams(NoParams).addSuccess(Schema.Struct({ status: Schema.Literal("ok") })))
  .add(
    HttpApiEndpoint.get("ready", "/health/ready").annotateContext(doc("Readiness", "Each dependency of the process separately — database (answers, every migration applied), broker, consumer (the worker's: joined and consuming) — from background probes, within 1 s whatever hangs: 200 when every required check passes, else 503 with the same checks.")).setUrlParams(NoParams)
      .addSuccess(Schema.Struct({
        status: Schema.Literal("ready"),
        checks: ReadinessChecks
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
  errorExample(NotReady, new NotReady({
    status: "not_ready",
    message: "not ready: database (timeout)",
    checks: { database: { ok: false, required: true, reason: "timeout", ageMs: 420 }, broker: { ok: true, required: true, ageMs: 310 } }
  }), "not ready to serve")
]
