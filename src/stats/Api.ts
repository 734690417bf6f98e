/** Read-only statistics from the asynchronous stats projection. */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { doc, NoParams } from "../http/Spec.js"

export const RevenueDay = Schema.Struct({
  currency: Schema.String,
  day: Schema.String,
  paidOrders: Schema.Number,
  revenue: Schema.String,
  refunds: Schema.Number.annotations({ description: "refunds that succeeded that day" }),
  refunded: Schema.String.annotations({ description: "revenue refunded that day" })
})

export class StatsApi extends HttpApiGroup.make("stats").annotateContext(OpenApi.annotations({ description: "Read-only statistics from the asynchronous stats projection." }))
  .add(
    HttpApiEndpoint.get("revenue", "/stats/revenue").annotateContext(doc("Revenue per day", "Paid and refunded revenue per currency and day, from the asynchronous stats projection.")).setUrlParams(NoParams).addSuccess(Schema.Array(RevenueDay))
  )
  .add(HttpApiEndpoint.get("ordersByState", "/stats/orders-by-state").annotateContext(doc("Orders per state", "Number of orders in each state, from the asynchronous stats projection.")).setUrlParams(NoParams).addSuccess(Schema.Record({ key: Schema.String, value: Schema.Number })))
{}
