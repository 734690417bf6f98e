/**
 * The payment provider as the worker sees it. `charge` is idempotent by key: the provider stores the first
 * result of a key and answers it again for any retry, so a retried call never charges twice (invariant 5).
 * A declined card is a result, not an error; `PaymentUnavailable` (timeouts, 5xx, outage) is transient.
 * `lookup` asks for the stored result of a key without charging: how a parked payment is reconciled.
 * `refund` is idempotent by key the same way (the refund id); a refund the provider will not make (above what
 * is left of the charge) is a result, `refused`. `ledger` lists what the provider holds (charges and refunds
 * since a time): the interface a real provider's "list charges/refunds" API fills, for reconciliation.
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

export interface RefundRequest {
  readonly idempotencyKey: string
  readonly orderId: string
  readonly amountMinor: bigint
  readonly currency: string
}

export interface RefundResult {
  readonly outcome: "succeeded" | "refused"
  /** The provider's id of the refund. */
  readonly providerRefundId: string
  readonly reason?: string | undefined
}

/** One record of the provider's ledger, a charge or a refund, by the key we gave it. */
export interface LedgerEntry {
  readonly idempotencyKey: string
  readonly orderId: string
  readonly amountMinor: bigint
  readonly currency: string
  /** charges: succeeded | declined; refunds: succeeded | refused */
  readonly outcome: string
  readonly createdAt: Date
}

export interface Ledger {
  readonly charges: ReadonlyArray<LedgerEntry>
  readonly refunds: ReadonlyArray<LedgerEntry>
}

export class PaymentUnavailable extends Data.TaggedError("PaymentUnavailable")<{ readonly message: string }> {}

export class PaymentGateway extends Context.Tag("PaymentGateway")<PaymentGateway, {
  readonly charge: (request: ChargeRequest) => Effect.Effect<ChargeResult, PaymentUnavailable>
  /** The provider's result for a key, or undefined when it has none; charges nothing. */
  readonly lookup: (idempotencyKey: string) => Effect.Effect<ChargeResult | undefined, PaymentUnavailable>
  readonly refund: (request: RefundRequest) => Effect.Effect<RefundResult, PaymentUnavailable>
  /** What the provider holds: charges and refunds made at or after `since`. */
  readonly ledger: (since: Date) => Effect.Effect<Ledger, PaymentUnavailable>
  /** The provider's record of one charge or refund by its key, or undefined when it has none. */
  readonly find: (kind: "charge" | "refund", idempotencyKey: string) => Effect.Effect<LedgerEntry | undefined, PaymentUnavailable>
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
  const base = target.pathname.replace(/\/$/, "")
  const path = `${base}/charges`
  const refundsPath = `${base}/refunds`
  const agent = new Agent({ keepAlive: true, maxSockets: maxConnections })
  const unavailable = (message: string) => new PaymentUnavailable({ message })
  // fair, one waiter woken per free connection (src/Permits.ts: Effect's Semaphore wakes them all)
  const connections = makePermits(maxConnections)

  /** One call: its status and JSON body (`{}` when not JSON); 5xx, 429, a broken connection or no answer in time fail. */
  type Answer = { status: number; body: Record<string, unknown> }
  const send = (method: "GET" | "POST", requestPath: string, headers: Record<string, string | number>, payload?: string) =>
    connections.withPermit(Effect.flatMap(currentTraceContext, (trace) =>
      Effect.async<Answer, PaymentUnavailable>((resume) => {
        // a timer of its own, not Effect.timeoutFail (two raced fibers per call): the first of answer, error
        // and timeout settles the call and stops the timer; the timeout also destroys the request
        let settled = false
        const settle = (effect: Effect.Effect<Answer, PaymentUnavailable>) => {
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
            let body: Record<string, unknown> = {}
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
      }))).pipe(traced(`${method} ${requestPath.startsWith(refundsPath) ? "/refunds" : "/charges"}`, {
        kind: "client",
        attributes: { "http.request.method": method, "server.address": target.host, "url.path": requestPath }
      }))

  const result = (status: number, body: Record<string, unknown>) =>
    (body.outcome === "succeeded" || body.outcome === "declined") && typeof body.chargeId === "string"
      ? Effect.succeed<ChargeResult>({ outcome: body.outcome, chargeId: body.chargeId })
      : Effect.fail(unavailable(`provider answered ${status} ${JSON.stringify(body)}`))

  const entry = (r: Record<string, string>): LedgerEntry => ({
    idempotencyKey: r.idempotencyKey!,
    orderId: r.orderId!,
    amountMinor: BigInt(r.amountMinor!),
    currency: r.currency!,
    outcome: r.outcome!,
    createdAt: new Date(r.createdAt ?? 0)
  })

  /** A charge or a refund: the body the provider takes, the key in its header. */
  const post = (postPath: string, request: ChargeRequest | RefundRequest) => {
    const payload = JSON.stringify({
      orderId: request.orderId,
      amountMinor: request.amountMinor.toString(),
      currency: request.currency
    })
    return send("POST", postPath, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(payload),
      "idempotency-key": request.idempotencyKey
    }, payload)
  }

  return PaymentGateway.of({
    charge: (request) => post(path, request).pipe(Effect.flatMap(({ body, status }) => result(status, body))),
    lookup: (idempotencyKey) =>
      send("GET", `${path}/${encodeURIComponent(idempotencyKey)}`, {}).pipe(
        Effect.flatMap(({ body, status }) => status === 404 ? Effect.succeed(undefined) : result(status, body))
      ),
    refund: (request) =>
      post(refundsPath, request).pipe(Effect.flatMap(({ body, status }) =>
        (body.outcome === "succeeded" || body.outcome === "refused") && typeof body.refundId === "string"
          ? Effect.succeed<RefundResult>({
            outcome: body.outcome,
            providerRefundId: body.refundId,
            reason: typeof body.reason === "string" ? body.reason : undefined
          })
          : Effect.fail(unavailable(`provider answered ${status} ${JSON.stringify(body).slice(0, 200)}`))
      )),
    ledger: (since) => {
      const list = (listPath: string) =>
        send("GET", `${listPath}?since=${encodeURIComponent(since.toISOString())}`, {}).pipe(
          Effect.flatMap(({ body, status }) => {
            const rows = body as unknown
            return status === 200 && Array.isArray(rows)
              ? Effect.succeed(rows.map(entry))
              : Effect.fail(unavailable(`provider answered ${status} to a ledger listing`))
          })
        )
      return Effect.all({ charges: list(path), refunds: list(refundsPath) })
    },
    find: (kind, idempotencyKey) =>
      send("GET", `${kind === "charge" ? path : refundsPath}/${encodeURIComponent(idempotencyKey)}`, {}).pipe(
        Effect.flatMap(({ body, status }) =>
          status === 404
            ? Effect.succeed(undefined)
            : status === 200 && typeof body.amountMinor === "string"
            ? Effect.succeed(entry(body as Record<string, string>))
            : Effect.fail(unavailable(`provider answered ${status} to a ${kind} lookup`))
        )
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
  /** Refunds by key (a refused one is kept too, as the provider answers its key again). */
  readonly refunds: Map<string, RefundRequest & RefundResult>
  /** Charges actually made (a replayed key is not a charge). */
  readonly charges: () => number
  /** Decide each call, a charge or a refund: "ok", "decline" (a refund: refused) or "unavailable" (default: "ok"). */
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
        })),
      refund: (request) =>
        Effect.zipRight(Effect.yieldNow(), Effect.suspend(() => {
          const known = provider.refunds.get(request.idempotencyKey)
          if (known) return Effect.succeed({ outcome: known.outcome, providerRefundId: known.providerRefundId, reason: known.reason })
          const decision = provider.script(request)
          if (decision === "unavailable") return Effect.fail(new PaymentUnavailable({ message: "scripted outage" }))
          // as a real provider: never more back than was charged
          const charged = [...provider.ledger.values()].find((c) => c.orderId === request.orderId && c.outcome === "succeeded")
          const refunded = [...provider.refunds.values()].reduce((sum, r) =>
            r.orderId === request.orderId && r.outcome === "succeeded" ? sum + r.amountMinor : sum, 0n)
          const over = charged === undefined || charged.currency !== request.currency || refunded + request.amountMinor > charged.amountMinor
          const result: RefundResult = decision === "ok" && !over
            ? { outcome: "succeeded", providerRefundId: randomUUID() }
            : { outcome: "refused", providerRefundId: randomUUID(), reason: over ? "above what is left of the charge" : "refused by the provider" }
          provider.refunds.set(request.idempotencyKey, { ...request, ...result })
          return Effect.succeed(result)
        })),
      ledger: () =>
        Effect.sync(() => ({
          charges: [...provider.ledger.entries()].map(([idempotencyKey, c]) => ({ ...c, idempotencyKey, createdAt: new Date(0) })),
          refunds: [...provider.refunds.entries()].map(([idempotencyKey, r]) => ({ ...r, idempotencyKey, createdAt: new Date(0) }))
        })),
      find: (kind, idempotencyKey) =>
        Effect.sync(() => {
          const known = kind === "charge" ? provider.ledger.get(idempotencyKey) : provider.refunds.get(idempotencyKey)
          return known && { ...known, idempotencyKey, createdAt: new Date(0) }
        })
    }))
).pipe(
  Layer.provideMerge(Layer.sync(MemoryProvider, () => {
    const ledger = new Map<string, ChargeRequest & ChargeResult>()
    const refunds = new Map<string, RefundRequest & RefundResult>()
    return { ledger, refunds, charges: () => ledger.size, script: () => "ok" as const }
  }))
)
