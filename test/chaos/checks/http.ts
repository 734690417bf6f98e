/**
 * Checks on what the clients were answered: Idempotency-Keys (one order per key, retries answered the first
 * response, no key left claimed) and HTTP statuses (no 500, a 503 only with Retry-After, no empty error).
 */
import { check, type CheckInput, type CheckResult } from "./common.js"

// 10. Idempotency-Keys
export const idempotencyKeys = ({ db, seen, byKey, orderIdOf, streams }: CheckInput): CheckResult => {
  const failures: Array<string> = []
  let retried = 0
  let stuckAfter5xx = 0
  const keyRows = new Map(db.keys.map((k) => [k.key, k]))
  for (const [key, ex] of byKey) {
    const ids = new Set(ex.filter((e) => e.status === 201 || e.status === 200).map(orderIdOf))
    if (ids.size > 1) failures.push(`${key}: answered with ${ids.size} different orders (${[...ids].join(", ")})`)
    if (ex.length > 1) retried++
    for (const e of ex) {
      if (e.status === 422) failures.push(`${key}: the same body was refused 422 on ${e.purpose}: ${JSON.stringify(e.body).slice(0, 200)}`)
      if (e.purpose === "retry-after-5xx" && e.status === 409) {
        stuckAfter5xx++
        failures.push(`${key}: retried at once after a 5xx answer and got 409 (the failed request left its key claimed): ${JSON.stringify(e.body).slice(0, 200)}`)
      }
      if (e.purpose === "retry-unanswered" && e.status === 409) {
        // the lease runs from the server's claim, which may come seconds after the client sent
        const claimed = keyRows.get(key)?.locked_at.getTime() ?? 0
        if (e.sentAt >= claimed + seen.leaseMs) failures.push(`${key}: still 409 after healing and the lease (key stuck in flight)`)
      }
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
  return check("Idempotency-Keys: one order each, retries answered the first response", failures,
    `${db.keys.length} keys, ${retried} sent more than once, ${stuckAfter5xx} stuck after a 5xx`, { keys: db.keys.length, retried, stuckAfter5xx, inFlight: db.keys.filter((k) => k.status === "in_flight").length },
    failures.map((f) => f.split(":")[0]!))
}

// 11. no 500, 503 only with Retry-After, no empty error
export const httpAnswers = ({ seen }: CheckInput): CheckResult => {
  const failures: Array<string> = []
  const byStatus = new Map<string, number>()
  for (const e of seen.exchanges) {
    const s = e.status === null ? "no answer" : String(e.status)
    byStatus.set(s, (byStatus.get(s) ?? 0) + 1)
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
  return check("HTTP: no 500, a 503 only with Retry-After, no empty error", failures, [...byStatus].sort().map(([s, n]) => `${s}: ${n}`).join(", "),
    Object.fromEntries(byStatus), failures.map((f) => f.split(" ")[0]!))
}
