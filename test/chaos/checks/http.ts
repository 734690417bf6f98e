/**
 * Checks on what the clients were answered (invariant 11 among them): Idempotency-Keys (one order per key,
 * retries answered the first response, no key left claimed, every key answered 2xx in the end) and HTTP
 * statuses (no 500, a 503 only with Retry-After, no empty error, and while PostgreSQL hangs or restarts an
 * answer within the client timeout).
 */
import type { Exchange } from "../load.js"
import { check, type CheckInput, type CheckResult, type FaultWindow } from "./common.js"

const isSuccess = (e: Exchange) => e.status === 200 || e.status === 201

// 10. Idempotency-Keys
export const idempotencyKeys = ({ db, seen, byKey, orderIdOf, streams }: CheckInput): CheckResult => {
  const failures: Array<string> = []
  let retried = 0
  let stuckAfter5xx = 0
  let concurrent409 = 0
  let heldByHang = 0
  const hangs = seen.faultWindows.filter((w) => w.kind === "pg-hang")
  let recovered = 0
  let neverSucceeded = 0
  const keyRows = new Map(db.keys.map((k) => [k.key, k]))
  const withinLease = (key: string, e: Exchange) => e.sentAt < (keyRows.get(key)?.locked_at.getTime() ?? 0) + seen.leaseMs
  for (const [key, ex] of byKey) {
    const ids = new Set(ex.filter(isSuccess).map(orderIdOf))
    if (ids.size > 1) failures.push(`${key}: answered with ${ids.size} different orders (${[...ids].join(", ")})`)
    if (ex.length > 1) retried++
    for (const e of ex) {
      if (e.status === 422) failures.push(`${key}: the same body was refused 422 on ${e.purpose}: ${JSON.stringify(e.body).slice(0, 200)}`)
      // a 409 is right while another request of the key is in progress (a deliberate retry and its own retry
      // after a 5xx, say): only a 409 with no other request of the key outstanding shows a claim left behind
      const concurrent = (o: Exchange) => o !== e && o.sentAt <= (e.answeredAt ?? Infinity) && (o.answeredAt ?? Infinity) >= e.sentAt
      // a request answered 503 at its deadline because the database did not answer at all (a pg-hang) goes on
      // in the background, and its claim cannot be released through a database that answers nothing — nor
      // at once when it resumes, behind the backlog of everything the hang held up (seed 5008: released 10.4 s
      // after a 6.9 s hang ended): a 409 for the retry is the truth ("in progress") until the claim's lease
      // could have run out — IDEMPOTENCY_LEASE_MS from the failed request's sending, which is before its claim;
      // a claim still held after that is a stuck one. The key must still succeed later (checked below)
      const failedInHang = (o: Exchange) =>
        o !== e && o.status !== null && o.status >= 500 && (o.answeredAt ?? 0) <= e.sentAt &&
        e.sentAt < o.sentAt + seen.leaseMs &&
        hangs.some((w) => o.sentAt <= (w.to ?? Infinity) && (o.answeredAt ?? Infinity) >= w.from)
      if (e.purpose === "retry-after-5xx" && e.status === 409 && ex.some(concurrent)) concurrent409++
      else if (e.purpose === "retry-after-5xx" && e.status === 409 && ex.some(failedInHang)) heldByHang++
      else if (e.purpose === "retry-after-5xx" && e.status === 409) {
        stuckAfter5xx++
        failures.push(`${key}: retried at once after a 5xx answer and got 409 (the failed request left its key claimed): ${JSON.stringify(e.body).slice(0, 200)}`)
      }
      if (e.purpose === "retry-unanswered" && e.status === 409) {
        // the lease runs from the server's claim, which may come seconds after the client sent
        const claimed = keyRows.get(key)?.locked_at.getTime() ?? 0
        if (e.sentAt >= claimed + seen.leaseMs) failures.push(`${key}: still 409 after healing and the lease (key stuck in flight)`)
      }
    }
    // invariant 11: a key refused 5xx or not answered succeeds when sent again (the runner sends every key
    // without a final answer again after healing); a last 409 inside the lease is allowed, as above (the claim
    // of a request that was held up came late)
    const failedOnce = ex.some((e) => e.status === null || e.status >= 500)
    if (ex.some(isSuccess)) {
      if (failedOnce) recovered++
    } else if (!(ex.at(-1)?.status === 409 && withinLease(key, ex.at(-1)!))) {
      neverSucceeded++
      failures.push(`${key}: never answered 2xx (answers ${ex.map((e) => e.status ?? "none").join(",")}): the same key must succeed after a failure`)
    }
  }
  const counts = new Map<string, number>()
  for (const k of db.keys) {
    const id = k.response_body?.orderId
    if (k.status === "in_flight") failures.push(`${k.key}: left claimed (in_flight) after quiescence by a request that did not complete (claimed ${k.locked_at.toISOString()})`)
    else if (typeof id === "string") counts.set(id, (counts.get(id) ?? 0) + 1)
  }
  for (const [id, n] of counts) if (n > 1) failures.push(`order ${id} is the answer of ${n} keys`)
  for (const k of db.keys) {
    const id = k.response_body?.orderId
    if (k.status === "completed" && typeof id === "string" && !streams.has(id)) failures.push(`${k.key}: completed with order ${id}, which is not in the log`)
  }
  return check("Idempotency-Keys: one order each, retries answered the first response, every key succeeds", failures,
    `${db.keys.length} keys, ${retried} sent more than once, ${stuckAfter5xx} stuck after a 5xx (${concurrent409} 409s while another request of the key was in progress, ${heldByHang} while a hung database held its first request's claim), ${recovered} succeeded after a 5xx or no answer, ${neverSucceeded} never`,
    { keys: db.keys.length, retried, stuckAfter5xx, concurrent409, heldByHang, recovered, neverSucceeded, inFlight: db.keys.filter((k) => k.status === "in_flight").length },
    failures.map((f) => f.split(":")[0]!))
}

/** PostgreSQL faults that last: a request meeting one must still be answered (503) within the client timeout */
const PG_WINDOWS = new Set(["pg-hang", "pg-restart"])

const overlaps = (e: Exchange, w: FaultWindow, timeoutMs: number) =>
  e.sentAt <= (w.to ?? Infinity) && (e.answeredAt ?? e.sentAt + timeoutMs) >= w.from

const timedOut = (e: Exchange) => e.status === null && /TimeoutError|due to timeout/.test(e.error ?? "")

// 11. no 500, 503 only with Retry-After, no empty error, no hang through a PostgreSQL fault
export const httpAnswers = ({ seen }: CheckInput): CheckResult => {
  const failures: Array<string> = []
  const byStatus = new Map<string, number>()
  const timeout = seen.clientTimeoutMs
  // per PostgreSQL fault kind, the answers of the requests that met it
  const duringPg = new Map<string, Map<string, number>>()
  let hungInPgFault = 0
  // the margin: the slowest answer to a request that met a PostgreSQL fault, against the client's timeout
  let slowestInPgFaultMs = 0
  for (const e of seen.exchanges) {
    const s = e.status === null ? "no answer" : String(e.status)
    byStatus.set(s, (byStatus.get(s) ?? 0) + 1)
    const pgFaults = seen.faultWindows.filter((w) => PG_WINDOWS.has(w.kind) && overlaps(e, w, timeout))
    if (pgFaults.length && e.answeredAt !== null) slowestInPgFaultMs = Math.max(slowestInPgFaultMs, e.answeredAt - e.sentAt)
    for (const kind of new Set(pgFaults.map((w) => w.kind))) {
      const m = duringPg.get(kind) ?? new Map<string, number>()
      m.set(s, (m.get(s) ?? 0) + 1)
      duringPg.set(kind, m)
    }
    // a timeout is the database's doing only if the api that took the request was not itself down or stopped
    const role = seen.apiRoles.get(e.api)
    const apiDisrupted = seen.faultWindows.some((w) => w.role !== null && w.role === role && overlaps(e, w, timeout))
    if (pgFaults.length && timedOut(e) && !apiDisrupted) {
      hungInPgFault++
      failures.push(`${e.key} (${e.purpose}) → no answer within the client timeout (${timeout} ms) from ${e.api} during ${[...new Set(pgFaults.map((w) => w.kind))].join(" and ")}: a request the database holds up must be answered 503 in time`)
    }
    // an infrastructure failure (a terminated database connection, a killed broker) is answered 503 with
    // Retry-After and a tagged body (invariant 11): honest, and retried by the client; any other 5xx fails
    const honest503 = e.status === 503 && typeof e.retryAfter === "string" && typeof (e.body as any)?._tag === "string"
    if (e.status !== null && e.status >= 500 && !honest503) {
      failures.push(`${e.key} (${e.purpose}) → ${e.status} from ${e.api}${e.status === 503 ? " without Retry-After or a tagged body" : ""}: ${JSON.stringify(e.body).slice(0, 200)}`)
    }
    else if (e.status !== null && e.status >= 400 && (e.body === null || typeof (e.body as any)?._tag !== "string")) {
      failures.push(`${e.key} (${e.purpose}) → ${e.status} without a tagged error body: ${JSON.stringify(e.body).slice(0, 200)}`)
    }
  }
  const pgSummary = [...duringPg].map(([kind, m]) => `; during ${kind}: ${[...m].sort().map(([s, n]) => `${s}: ${n}`).join(", ")}`).join("") +
    (duringPg.size > 0 ? `; slowest answer through them ${(slowestInPgFaultMs / 1000).toFixed(1)} s of the client's ${timeout / 1000} s` : "")
  return check("HTTP: no 500, a 503 only with Retry-After, no empty error, no hang through a PostgreSQL fault", failures,
    [...byStatus].sort().map(([s, n]) => `${s}: ${n}`).join(", ") + pgSummary,
    { ...Object.fromEntries(byStatus), hungInPgFault, slowestInPgFaultMs, ...Object.fromEntries([...duringPg].map(([k, m]) => [`during ${k}`, [...m.values()].reduce((a, b) => a + b, 0)])) },
    failures.map((f) => f.split(" ")[0]!))
}
