/**
 * Bounded open-loop load: POST /orders at a fixed rate whatever the answers (requests are due on a clock, not
 * after the previous answer), a unique Idempotency-Key per order, some keys deliberately sent again with the
 * same body, some orders cancelled, some refunded a few seconds after they were placed (partially, some twice,
 * some with the refund's Idempotency-Key sent again). Every request and its answer (or the lack of one) is recorded for the
 * checker. At most `maxInFlight` requests are outstanding; a due request beyond that is counted as not sent.
 */
import type { Prng } from "./prng.js"

export type Purpose = "first" | "deliberate-retry" | "retry-after-5xx" | "retry-unanswered" | "cancel" | "refund"

export interface Exchange {
  readonly key: string
  readonly purpose: Purpose
  readonly api: string
  readonly sentAt: number
  /** HTTP status, or null when no answer came (connection refused/reset, timeout) */
  status: number | null
  body: unknown
  error: string | null
  answeredAt: number | null
  /** for cancels and refunds: the order */
  orderId?: string
  /** the Retry-After header of the answer, when it had one (a 503 must) */
  retryAfter?: string | null
}

export interface OrderRequest {
  readonly key: string
  readonly body: { userId: string; amount: string; currency: string }
}

const CURRENCIES = [["EUR", 2], ["USD", 2], ["JPY", 0], ["KWD", 3]] as const

/** `amount` (a decimal string with `decimals` places) divided by `by`, rounded down to a minor unit, at least one. */
const fraction = (amount: string, decimals: number, by: number) => {
  const [whole, part = ""] = amount.split(".")
  const minor = BigInt(whole + part.padEnd(decimals, "0")) / BigInt(by)
  const digits = (minor > 0n ? minor : 1n).toString().padStart(decimals + 1, "0")
  return decimals === 0 ? digits : `${digits.slice(0, -decimals)}.${digits.slice(-decimals)}`
}

export class LoadGenerator {
  readonly exchanges: Array<Exchange> = []
  readonly requests = new Map<string, OrderRequest>()
  notSent = 0
  private inFlight = 0
  private timers = new Set<NodeJS.Timeout>()
  private stopped = false
  private pending = new Set<Promise<unknown>>()
  private readonly users: Array<string>
  private readonly apiOf = new Map<string, readonly [string, string]>()

  constructor(
    private readonly rng: Prng,
    private readonly apis: ReadonlyArray<string>,
    private readonly seed: number,
    private readonly options: { rate: number; retryShare: number; cancelShare: number; refundShare: number; maxInFlight: number; timeoutMs: number }
  ) {
    this.users = Array.from({ length: 10 }, () => rng.uuid())
  }

  private later(ms: number, f: () => void) {
    const t = setTimeout(() => {
      this.timers.delete(t)
      if (!this.stopped) f()
    }, ms)
    this.timers.add(t)
  }

  private async exchange(
    api: string,
    purpose: Purpose,
    key: string,
    path: string,
    body: unknown,
    withKey: boolean,
    orderId?: string
  ): Promise<Exchange | null> {
    if (this.inFlight >= this.options.maxInFlight) {
      this.notSent++
      return null
    }
    const ex: Exchange = { key, purpose, api, sentAt: Date.now(), status: null, body: null, error: null, answeredAt: null, ...(orderId ? { orderId } : {}) }
    this.exchanges.push(ex)
    this.inFlight++
    const p = (async () => {
      try {
        const res = await fetch(`${api}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json", ...(withKey ? { "idempotency-key": key } : {}) },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(this.options.timeoutMs)
        })
        const text = await res.text()
        ex.status = res.status
        ex.retryAfter = res.headers.get("retry-after")
        ex.answeredAt = Date.now()
        try {
          ex.body = text.length === 0 ? null : JSON.parse(text)
        } catch {
          ex.body = text.slice(0, 500)
        }
      } catch (e) {
        ex.error = String((e as Error).cause ?? e).slice(0, 200)
      } finally {
        this.inFlight--
      }
      return ex
    })()
    this.pending.add(p)
    p.finally(() => this.pending.delete(p))
    return p
  }

  private newOrder(n: number) {
    const [currency, decimals] = this.rng.pick(CURRENCIES)
    const major = this.rng.int(1, 500)
    const minor = decimals === 0 ? "" : "." + String(this.rng.int(0, 10 ** decimals - 1)).padStart(decimals, "0")
    const request: OrderRequest = {
      key: `chaos-${this.seed}-${n}`,
      body: { userId: this.rng.pick(this.users), amount: `${major}${minor}`, currency }
    }
    this.requests.set(request.key, request)
    // every draw of an order is made here, in arrival order, so a seed gives the same mix whatever the timing
    const [api, otherApi] = this.rng.chance(0.5) ? [this.apis[0]!, this.apis[1]!] : [this.apis[1]!, this.apis[0]!]
    const retry = this.rng.chance(this.options.retryShare)
    const retryAfter = this.rng.int(0, 1500)
    const cancel = this.rng.chance(this.options.cancelShare)
    const cancelAfter = this.rng.int(0, 2000)
    const refund = !cancel && this.rng.chance(this.options.refundShare)
    const refundAfter = this.rng.int(1500, 4000)
    const refundTwice = this.rng.chance(0.3)
    const refundRetried = this.rng.chance(0.3)
    this.apiOf.set(request.key, [api, otherApi])
    void this.send(request, "first").then((ex) => {
      const orderId = ex && ex.status === 201 ? (ex.body as { orderId?: string }).orderId : undefined
      if (orderId && cancel) this.later(cancelAfter, () => void this.exchange(otherApi, "cancel", request.key, `/orders/${orderId}/cancel`, {}, false, orderId))
      if (orderId && refund) {
        // a third of the amount (at least one minor unit), by keys of their own
        const body = { amount: fraction(request.body.amount, decimals, 3) }
        // a 409 while the order is not paid yet is asked again (as a shop would, once it sees PAID), a few times
        const refundOnce = (n: number, tries = 1) => {
          const key = `${request.key}/refund-${n}`
          void this.exchange(otherApi, "refund", key, `/orders/${orderId}/refunds`, body, true, orderId).then((ex) => {
            const state = (ex?.body as { status?: string } | null)?.status
            if (ex?.status === 409 && (state === "CREATED" || state === "PAYMENT_PENDING") && tries < 6) {
              this.later(1500, () => refundOnce(n, tries + 1))
            } else if (ex?.status === 202 && refundRetried && tries > 0) {
              this.later(300, () => void this.exchange(api, "refund", key, `/orders/${orderId}/refunds`, body, true, orderId))
            }
          })
        }
        this.later(refundAfter, () => refundOnce(1))
        if (refundTwice) this.later(refundAfter + 700, () => refundOnce(2))
      }
    })
    if (retry) this.later(retryAfter, () => void this.send(request, "deliberate-retry"))
  }

  /** Send an order request; a 5xx answer is retried at once (invariant 11: a failed keyed request can be retried at once). */
  async send(request: OrderRequest, purpose: Purpose): Promise<Exchange | null> {
    // first requests go to one api, everything else of the key to the other one
    const [api, otherApi] = this.apiOf.get(request.key)!
    const ex = await this.exchange(purpose === "first" ? api : otherApi, purpose, request.key, "/orders", request.body, true)
    if (ex && ex.status !== null && ex.status >= 500 && purpose !== "retry-after-5xx" && !this.stopped) {
      await new Promise((r) => setTimeout(r, 100))
      return this.exchange(otherApi, "retry-after-5xx", request.key, "/orders", request.body, true)
    }
    return ex
  }

  /** Run for durationMs at the configured rate. */
  async run(durationMs: number): Promise<void> {
    const start = Date.now()
    const interval = 1000 / this.options.rate
    let n = 0
    while (!this.stopped) {
      const due = start + n * interval
      if (due - start >= durationMs) break
      const wait = due - Date.now()
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
      this.newOrder(n++)
    }
  }

  /** Stop scheduling (pending timers dropped) and wait for outstanding requests. */
  async drain(): Promise<void> {
    this.stopped = true
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    await Promise.allSettled([...this.pending])
  }

  /** After healing: send again every key that never got a final answer (2xx or 4xx). */
  async retryUnanswered(): Promise<number> {
    this.stopped = false
    const final = new Set<string>()
    for (const ex of this.exchanges) {
      if (ex.purpose !== "cancel" && ex.purpose !== "refund" && ex.status !== null && ex.status < 500 && ex.status !== 409) final.add(ex.key)
    }
    const todo = [...this.requests.values()].filter((r) => !final.has(r.key))
    for (let i = 0; i < todo.length; i += 20) {
      await Promise.all(todo.slice(i, i + 20).map((r) => this.exchange(this.apiOf.get(r.key)![0], "retry-unanswered", r.key, "/orders", r.body, true)))
    }
    this.stopped = true
    return todo.length
  }
}
