/** The stats endpoints: the stats projection's rows, amounts formatted as the orders API formats them. */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect } from "effect"
import { formatMoney, Money } from "../domain/Money.js"
import { Api } from "../http/Api.js"
import { StatsProjection } from "../projection/StatsProjection.js"
import { answerStoreErrors } from "../http/Failures.js"

export const StatsHttpLive = HttpApiBuilder.group(Api, "stats", (handlers) =>
  Effect.gen(function*() {
    const stats = yield* StatsProjection
    return handlers
      .handle("revenue", () =>
        Effect.map(stats.revenue, (rows) =>
          rows.map((r) => ({
            currency: r.currency,
            day: r.day,
            paidOrders: Number(r.paid_orders),
            revenue: formatMoney(new Money({ minor: BigInt(r.revenue_minor), currency: r.currency as Money["currency"] }, { disableValidation: true })),
            refunds: Number(r.refunds),
            refunded: formatMoney(new Money({ minor: BigInt(r.refunded_minor), currency: r.currency as Money["currency"] }, { disableValidation: true }))
          }))).pipe(answerStoreErrors))
      .handle("ordersByState", () =>
        Effect.map(stats.byState, (rows) => Object.fromEntries(rows.map((r) => [r.status, Number(r.orders)]))).pipe(answerStoreErrors))
  }))
