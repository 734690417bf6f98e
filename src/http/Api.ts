/**
 * The HTTP API as one spec (@effect/platform HttpApi), composed of the features' groups (src/orders, src/admin,
 * src/ops, src/stats). Each feature declares its endpoints and the status of every error a client can cause
 * there; the errors any endpoint may answer are in ./Errors.ts. Status codes are declared in the spec, never
 * in the domain. Every error response carries an example of each error it may be (./ErrorExamples.ts).
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as OpenApi from "@effect/platform/OpenApi"
import { adminErrorExamples, DeadLettersApi, ProjectionsApi, ReconciliationApi, WebhooksApi } from "../admin/Api.js"
import { HealthApi, MetricsApi, opsErrorExamples } from "../ops/Api.js"
import { OrdersApi, ordersErrorExamples } from "../orders/Api.js"
import { StatsApi } from "../stats/Api.js"
import { withErrorExamples } from "./ErrorExamples.js"
import { httpErrorExamples, InternalError, ServiceUnavailable } from "./Errors.js"

const errorExamples = withErrorExamples([...httpErrorExamples, ...ordersErrorExamples, ...adminErrorExamples, ...opsErrorExamples])

export class Api extends HttpApi.make("orders-es").annotateContext(OpenApi.annotations({
  title: "orders-es",
  version: "0.1.0",
  description: "Event-sourced orders and payments: place an order, follow it to PAID or FAILED. Errors are JSON " +
    "with a `_tag` and a `message`; every response carries `X-Request-Id`.",
  servers: [{ url: "http://127.0.0.1:3000", description: "local development (npm start)" }],
  // a private project with no license file: an SPDX LicenseRef (OpenAPI 3.1 `identifier`) says so without a URL
  transform: (spec) =>
    errorExamples({ ...spec, info: { ...spec.info, license: { name: "Proprietary", identifier: "LicenseRef-Proprietary" } } })
})).add(OrdersApi).add(HealthApi).add(DeadLettersApi).add(ProjectionsApi).add(ReconciliationApi).add(WebhooksApi)
  .add(StatsApi)
  .add(MetricsApi)
  // answered by the failure middleware (src/http/Failures.ts) for any endpoint; declared here for the document
  .addError(ServiceUnavailable)
  .addError(InternalError)
{}
