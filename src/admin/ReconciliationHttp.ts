/** The reconciliation endpoint of the admin API (src/payment/Reconciliation.ts): the log against the provider. */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Clock, Duration, Effect } from "effect"
import { Api } from "../http/Api.js"
import { answerStoreErrors, providerUnavailable } from "../http/Failures.js"
import { makeReconciler, ReconcileConfig } from "../payment/Reconciliation.js"

export const ReconciliationHttpLive = HttpApiBuilder.group(Api, "adminReconciliation", (handlers) =>
  Effect.gen(function*() {
    const reconcile = yield* makeReconciler
    const { window } = yield* Effect.orDie(ReconcileConfig)
    return handlers.handle("reconcile", ({ urlParams }) =>
      Effect.gen(function*() {
        const since = urlParams.since ?? new Date((yield* Clock.currentTimeMillis) - Duration.toMillis(window))
        return yield* reconcile(since)
      }).pipe(
        Effect.catchTag("PaymentUnavailable", (e) => providerUnavailable(`the payment provider could not be asked: ${e.message}`)),
        answerStoreErrors
      ))
  }))
