/**
 * The payment provider as the worker sees it. `charge` is idempotent by key: the provider stores the first
 * result of a key and answers it again for any retry, so a retried call never charges twice (invariant 5).
 * A declined card is a result, not an error; `PaymentUnavailable` (timeouts, 5xx, outage) is transient.
 * Two layers: HTTP to the provider (the simulator in development and tests), and in-memory for property runs.
 */
import { Config, Context, Data, Duration, Effect, Layer } from "effect"
import { randomUUID } from "node:crypto"

export interface ChargeRequest {
  readonly idempotencyKey: string
  readonly orderId: string
  readonly amountMinor: bigint
  readonly currency: string
}

export interface ChargeResult {
  readonly outcome: "succeeded" | "declined"
  readonly chargeId: string
}

export class PaymentUnavailable extends Data.TaggedError("PaymentUnavailable")<{ readonly message: string }> {}

export class PaymentGateway extends Context.Tag("PaymentGateway")<PaymentGateway, {
  readonly charge: (request: ChargeRequest) => Effect.Effect<ChargeResult, PaymentUnavailable>
}>() {}

export const PaymentGatewayConfig = Config.all({
  url: Config.string("PAYMENT_PROVIDER_URL").pipe(Config.withDefault("http://127.0.0.1:3100")),
  timeoutMs: Config.integer("PAYMENT_TIMEOUT_MS").pipe(Config.withDefault(5000))
})

export const httpPaymentGateway = (url: string, timeoutMs: number) =>
  PaymentGateway.of({
    charge: (request) =>
      Effect.tryPromise({
        try: async (signal) => {
          const response = await fetch(`${url}/charges`, {
            method: "POST",
            headers: { "content-type": "application/json", "idempotency-key": request.idempotencyKey },
            body: JSON.stringify({
              orderId: request.orderId,
              amountMinor: request.amountMinor.toString(),
              currency: request.currency
            }),
            signal
          })
          const body = await response.json().catch(() => ({})) as { outcome?: string; chargeId?: string }
          if (response.status >= 500 || response.status === 429) throw new Error(`provider answered ${response.status}`)
          if ((body.outcome === "succeeded" || body.outcome === "declined") && typeof body.chargeId === "string") {
            return { outcome: body.outcome, chargeId: body.chargeId } as ChargeResult
          }
          throw new Error(`provider answered ${response.status} ${JSON.stringify(body)}`)
        },
        catch: (e) => new PaymentUnavailable({ message: e instanceof Error ? e.message : String(e) })
      }).pipe(
        Effect.timeoutFail({
          duration: Duration.millis(timeoutMs),
          onTimeout: () => new PaymentUnavailable({ message: `no answer within ${timeoutMs} ms` })
        })
      )
  })

export const HttpPaymentGateway = Layer.effect(
  PaymentGateway,
  Effect.map(PaymentGatewayConfig, (c) => httpPaymentGateway(c.url, c.timeoutMs))
).pipe(Layer.orDie)

/** In-memory provider with a ledger by key and scripted faults (for property runs and unit tests). */
export class MemoryProvider extends Context.Tag("MemoryProvider")<MemoryProvider, {
  readonly ledger: Map<string, ChargeRequest & ChargeResult>
  /** Charges actually made (a replayed key is not a charge). */
  readonly charges: () => number
  /** Decide each call: "ok", "decline" or "unavailable" (default: always "ok"). */
  script: (request: ChargeRequest) => "ok" | "decline" | "unavailable"
}>() {}

export const MemoryPaymentGateway = Layer.effect(
  PaymentGateway,
  Effect.map(MemoryProvider, (provider) =>
    PaymentGateway.of({
      // a provider is remote: the call yields before it is answered, so concurrent calls interleave
      charge: (request) =>
        Effect.zipRight(Effect.yieldNow(), Effect.suspend(() => {
          const known = provider.ledger.get(request.idempotencyKey)
          if (known) return Effect.succeed({ outcome: known.outcome, chargeId: known.chargeId })
          const decision = provider.script(request)
          if (decision === "unavailable") return Effect.fail(new PaymentUnavailable({ message: "scripted outage" }))
          const result: ChargeResult = { outcome: decision === "ok" ? "succeeded" : "declined", chargeId: randomUUID() }
          provider.ledger.set(request.idempotencyKey, { ...request, ...result })
          return Effect.succeed(result)
        }))
    }))
).pipe(
  Layer.provideMerge(Layer.sync(MemoryProvider, () => {
    const ledger = new Map<string, ChargeRequest & ChargeResult>()
    return { ledger, charges: () => ledger.size, script: () => "ok" as const }
  }))
)
