/**
 * The payment provider as the worker sees it. `charge` is idempotent by key: the provider stores the first
 * result of a key and answers it again for any retry, so a retried call never charges twice (invariant 5).
 * A declined card is a result, not an error; `PaymentUnavailable` (timeouts, 5xx, outage) is transient.
 * `lookup` asks for the stored result of a key without charging: how a parked payment is reconciled.
 * Two layers: HTTP to the provider (the simulator in development and tests), and in-memory for property runs.
 */
import { Config, Context, Data, Effect, Layer } from "effect"
import { randomUUID } from "node:crypto"
import { Agent, request as httpRequest } from "node:http"
import { currentTraceContext, traced } from "../observability/Tracing.js"
import { makePermits } from "../Permits.js"

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
  /** The provider's result for a key, or undefined when it has none; charges nothing. */
  readonly lookup: (idempotencyKey: string) => Effect.Effect<ChargeResult | undefined, PaymentUnavailable>
}>() {}

export const PaymentGatewayConfig = Config.all({
  url: Config.string("PAYMENT_PROVIDER_URL").pipe(Config.withDefault("http://127.0.0.1:3100")),
  timeoutMs: Config.integer("PAYMENT_TIMEOUT_MS").pipe(Config.withDefault(5000)),
  maxConnections: Config.integer("PAYMENT_MAX_CONNECTIONS").pipe(Config.withDefault(64))
})

/**
 * Over HTTP/1.1 with a keep-alive agent of at most `maxConnections` sockets. At most `maxConnections` calls
 * are under way at once: the others wait for a permit *before* their timeout starts. (Waiting in the agent's
 * queue instead counted against the timeout: with a backlog, the keyed consumer starts hundreds of payments at
 * once, and most of them timed out in the queue — a retry storm against a provider that was merely busy.)
 */
export const httpPaymentGateway = (url: string, timeoutMs: number, maxConnections = 64) => {
  const target = new URL(url)
  const path = `${target.pathname.replace(/\/$/, "")}/charges`
  const agent = new Agent({ keepAlive: true, maxSockets: maxConnections })
  const unavailable = (message: string) => new PaymentUnavailable({ message })
  // fair, one waiter woken per free connection (src/Permits.ts: Effect's Semaphore wakes them all)
  const connections = makePermits(maxConnections)

  /** One call: its status and JSON body (`{}` when not JSON); 5xx, 429, a broken connection or no answer in time fail. */
  const send = (method: "GET" | "POST", requestPath: string, headers: Record<string, string | number>, payload?: string) =>
    connections.withPermit(Effect.flatMap(currentTraceContext, (trace) =>
      Effect.async<{ status: number; body: { outcome?: string; chargeId?: string } }, PaymentUnavailable>((resume) => {
        // a timer of its own, not Effect.timeoutFail (two raced fibers per call): the first of answer, error
        // and timeout settles the call and stops the timer; the timeout also destroys the request
        let settled = false
        const settle = (effect: Effect.Effect<{ status: number; body: { outcome?: string; chargeId?: string } }, PaymentUnavailable>) => {
          if (settled) return
          settled = true
          clearTimeout(timer)
          resume(effect)
        }
        const call = httpRequest({
          agent,
          host: target.hostname,
          port: target.port,
          path: requestPath,
          method,
          headers: { ...headers, ...trace }
        }, (response) => {
          const chunks: Array<Buffer> = []
          response.on("data", (chunk: Buffer) => chunks.push(chunk))
          response.on("error", (e) => settle(Effect.fail(unavailable(e.message))))
          response.on("end", () => {
            const status = response.statusCode ?? 0
            let body: { outcome?: string; chargeId?: string } = {}
            try {
              body = JSON.parse(Buffer.concat(chunks).toString("utf8"))
            } catch { /* not JSON: judged by the status */ }
            if (status >= 500 || status === 429) return settle(Effect.fail(unavailable(`provider answered ${status}`)))
            settle(Effect.succeed({ status, body }))
          })
        })
        const timer = setTimeout(() => {
          settle(Effect.fail(unavailable(`no answer within ${timeoutMs} ms`)))
          call.destroy()
        }, timeoutMs)
        call.on("error", (e) => settle(Effect.fail(unavailable(e.message))))
        call.end(payload)
        return Effect.sync(() => {
          settled = true
          clearTimeout(timer)
          call.destroy()
        })
      }))).pipe(traced(`${method} /charges`, {
        kind: "client",
        attributes: { "http.request.method": method, "server.address": target.host, "url.path": requestPath }
      }))

  const result = (status: number, body: { outcome?: string; chargeId?: string }) =>
    (body.outcome === "succeeded" || body.outcome === "declined") && typeof body.chargeId === "string"
      ? Effect.succeed<ChargeResult>({ outcome: body.outcome, chargeId: body.chargeId })
      : Effect.fail(unavailable(`provider answered ${status} ${JSON.stringify(body)}`))

  return PaymentGateway.of({
    charge: (request) => {
      const payload = JSON.stringify({
        orderId: request.orderId,
        amountMinor: request.amountMinor.toString(),
        currency: request.currency
      })
      return send("POST", path, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(payload),
        "idempotency-key": request.idempotencyKey
      }, payload).pipe(Effect.flatMap(({ body, status }) => result(status, body)))
    },
    lookup: (idempotencyKey) =>
      send("GET", `${path}/${encodeURIComponent(idempotencyKey)}`, {}).pipe(
        Effect.flatMap(({ body, status }) => status === 404 ? Effect.succeed(undefined) : result(status, body))
      )
  })
}

export const HttpPaymentGateway = Layer.effect(
  PaymentGateway,
  Effect.map(PaymentGatewayConfig, (c) => httpPaymentGateway(c.url, c.timeoutMs, c.maxConnections))
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
        })),
      lookup: (key) =>
        Effect.zipRight(Effect.yieldNow(), Effect.sync(() => {
          const known = provider.ledger.get(key)
          return known && { outcome: known.outcome, chargeId: known.chargeId }
        }))
    }))
).pipe(
  Layer.provideMerge(Layer.sync(MemoryProvider, () => {
    const ledger = new Map<string, ChargeRequest & ChargeResult>()
    return { ledger, charges: () => ledger.size, script: () => "ok" as const }
  }))
)
