/**
 * A fix of kafkajs 2.2.4's request queue, applied once when src/kafka loads (kafkajs is pinned and stays
 * behind this folder). Its `scheduleCheckPendingRequests` arms a timer even when no request waits: the delay
 * is then `throttledUntil - now`, negative, so Node runs it after 1 ms, and the check re-arms it — a 1 ms
 * timer loop per broker connection for the life of the process (upstream tulios/kafkajs#1751; Node 23+ also
 * prints a TimeoutNegativeWarning for it). Measured here: an idle api process woke ~1,800 times a second and
 * spent 4 % of a core doing nothing, a relay,worker,projector process 6 % (issue 24: every added process cost
 * CPU per order before it handled any). The fixed version arms the timer only while requests wait: a push
 * that cannot be sent at once arms it (as before), and every completed request checks the queue (as before).
 */
import { createRequire } from "node:module"

/** Upstream's CHECK_PENDING_REQUESTS_INTERVAL: how soon a waiting request is looked at again, unthrottled. */
const CHECK_PENDING_REQUESTS_INTERVAL = 10

export interface RequestQueueState {
  pending: ReadonlyArray<unknown>
  throttledUntil: number
  throttleCheckTimeoutId: ReturnType<typeof setTimeout> | null
  checkPendingRequests(): void
}

export function scheduleCheckPendingRequests(this: RequestQueueState): void {
  if (this.throttleCheckTimeoutId || this.pending.length === 0) return
  const throttled = this.throttledUntil - Date.now()
  this.throttleCheckTimeoutId = setTimeout(() => {
    this.throttleCheckTimeoutId = null
    this.checkPendingRequests()
  }, throttled > 0 ? throttled : CHECK_PENDING_REQUESTS_INTERVAL)
}

const RequestQueue = createRequire(import.meta.url)("kafkajs/src/network/requestQueue/index.js") as {
  prototype: { scheduleCheckPendingRequests: (this: RequestQueueState) => void }
}
if (typeof RequestQueue.prototype?.scheduleCheckPendingRequests !== "function") {
  throw new Error("kafkajs's RequestQueue changed: src/kafka/RequestQueueFix.ts no longer applies")
}
RequestQueue.prototype.scheduleCheckPendingRequests = scheduleCheckPendingRequests

/** The patched prototype (tests). */
export const patchedRequestQueue = RequestQueue.prototype
