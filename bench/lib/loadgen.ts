/**
 * Open-loop, constant-arrival-rate HTTP load: request i is due at t0 + i/rate whatever happened to the ones
 * before it (a slow server does not slow the offered load down), and its latency is measured from that due
 * time, not from when a socket became free. That is the correction for coordinated omission: time a request
 * spent waiting for a connection, or for the generator itself, counts as latency. Latencies go into an HDR
 * histogram (microseconds, 3 significant digits).
 */
import * as hdr from "hdr-histogram-js"
import { Agent, request } from "node:http"

export interface StepResult {
  readonly offeredRate: number
  readonly seconds: number
  readonly sent: number
  readonly ok: number
  readonly errors: number
  /** Responses with the expected status per second, over the time from the first due time to the last answer. */
  readonly acceptedRate: number
  readonly latencyMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number; readonly mean: number }
  /** Parsed bodies of the accepted responses, when `collect` asked for them. */
  readonly bodies: ReadonlyArray<unknown>
  /** Statuses that were not the expected one, with counts. */
  readonly statuses: Readonly<Record<string, number>>
}

export interface StepOptions {
  readonly url: string
  readonly rate: number
  readonly seconds: number
  readonly body: (i: number) => string
  readonly expectStatus?: number
  readonly collect?: boolean
  /** Upper bound of open connections (requests beyond it wait in the agent's queue, and that wait is latency). */
  readonly maxSockets?: number
  /** Give up on an unanswered request after this long (counted as an error). */
  readonly timeoutMs?: number
}

export const newHistogram = () =>
  hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 })

export const summarize = (h: hdr.Histogram) => ({
  p50: h.getValueAtPercentile(50) / 1000,
  p90: h.getValueAtPercentile(90) / 1000,
  p99: h.getValueAtPercentile(99) / 1000,
  max: h.maxValue / 1000,
  mean: h.mean / 1000
})

export const runStep = (options: StepOptions): Promise<StepResult> =>
  new Promise((resolve) => {
    const target = new URL(options.url)
    const agent = new Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 256 })
    const histogram = newHistogram()
    const expect = options.expectStatus ?? 201
    const total = Math.round(options.rate * options.seconds)
    const intervalMs = 1000 / options.rate
    const bodies: Array<unknown> = []
    const statuses: Record<string, number> = {}
    let sent = 0
    let done = 0
    let ok = 0
    let lastAnswer = 0
    const t0 = performance.now() + 5

    const finish = () => {
      agent.destroy()
      const span = (lastAnswer - t0) / 1000
      resolve({
        offeredRate: options.rate,
        seconds: options.seconds,
        sent,
        ok,
        errors: sent - ok,
        acceptedRate: span > 0 ? ok / Math.max(span, options.seconds) : 0,
        latencyMs: summarize(histogram),
        bodies,
        statuses
      })
    }

    const fire = (i: number) => {
      const due = t0 + i * intervalMs
      const payload = options.body(i)
      const req = request({
        agent,
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: "POST",
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
        timeout: options.timeoutMs ?? 30_000
      }, (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (c: Buffer) => chunks.push(c))
        res.on("end", () => {
          const now = performance.now()
          histogram.recordValue(Math.max(1, Math.round((now - due) * 1000)))
          if (res.statusCode === expect) {
            ok++
            if (options.collect) bodies.push(JSON.parse(Buffer.concat(chunks).toString("utf8")))
          } else statuses[String(res.statusCode)] = (statuses[String(res.statusCode)] ?? 0) + 1
          settle(now)
        })
      })
      req.on("timeout", () => req.destroy(new Error("timeout")))
      req.on("error", (e) => {
        const now = performance.now()
        histogram.recordValue(Math.max(1, Math.round((now - due) * 1000)))
        statuses[e.message] = (statuses[e.message] ?? 0) + 1
        settle(now)
      })
      req.end(payload)
    }

    const settle = (now: number) => {
      done++
      lastAnswer = Math.max(lastAnswer, now)
      if (done === total) finish()
    }

    // The clock: every tick sends everything that has fallen due (a late tick sends a burst, with the
    // lateness counted in those requests' latency).
    const tick = () => {
      const due = Math.min(total, Math.floor((performance.now() - t0) / intervalMs) + 1)
      while (sent < due) fire(sent++)
      if (sent < total) setTimeout(tick, 1)
    }
    setTimeout(tick, 5)
  })
