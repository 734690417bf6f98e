/**
 * src/kafka/RequestQueueFix.ts: kafkajs's request queue arms no timer while nothing waits (upstream re-armed a
 * 1 ms timer forever: a busy loop per broker connection), and still looks again at waiting requests, after the
 * throttle when throttled.
 */
import { assert, describe, it } from "@effect/vitest"
import "../../src/kafka/Kafka.js"
import { patchedRequestQueue, type RequestQueueState } from "../../src/kafka/RequestQueueFix.js"

const queue = (pending: Array<unknown>, throttledUntil = -1) => {
  const state: RequestQueueState & { checks: number } = {
    pending,
    throttledUntil,
    throttleCheckTimeoutId: null,
    checks: 0,
    checkPendingRequests() {
      state.checks++
    }
  }
  return state
}

describe("kafkajs request queue (patched)", () => {
  it("arms no timer when no request waits", () => {
    const q = queue([])
    patchedRequestQueue.scheduleCheckPendingRequests.call(q)
    assert.isNull(q.throttleCheckTimeoutId)
  })

  it("checks waiting requests again soon, and not before the throttle ends", async () => {
    const waiting = queue(["a request"])
    patchedRequestQueue.scheduleCheckPendingRequests.call(waiting)
    assert.isNotNull(waiting.throttleCheckTimeoutId)
    const throttled = queue(["a request"], Date.now() + 200)
    patchedRequestQueue.scheduleCheckPendingRequests.call(throttled)
    await new Promise((r) => setTimeout(r, 60))
    assert.strictEqual(waiting.checks, 1)
    assert.isNull(waiting.throttleCheckTimeoutId)
    assert.strictEqual(throttled.checks, 0)
    clearTimeout(throttled.throttleCheckTimeoutId!)
  })
})
