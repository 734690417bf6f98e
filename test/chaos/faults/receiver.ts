/**
 * Faults on the webhook receiver (family receiver), the merchants' side of the notifier: the process killed and
 * started again later; one endpoint slow (answers after more than the notifier's timeout), failing (half its
 * deliveries answered 500, with or without Retry-After) or gone (410) for a while — set through the receiver's
 * `PUT /control/:name`, re-applied when it restarts. A 410 makes the notifier fail that delivery and disable the
 * endpoint; when the fault ends the nemesis enables it again as an operator would (SQL, as the admin API's enable
 * does) and keeps the window in which it may have been disabled: the events the notifier consumed then are
 * rightly not delivered to it, and the webhooks check reads them against that window.
 */
import type { Nemesis } from "../nemesis.js"
import { ENDPOINT_DISABLED_WINDOW } from "../checks/webhooks.js"
import type { FaultOf, WebhookEndpointName } from "../schedule.js"
import { sleep, withClient } from "../waits.js"

/** What the faults change of an endpoint's settings at the receiver (its secrets are given at its start). */
export interface ReceiverFaultSettings {
  latencyMs: number
  failRate: number
  gone: boolean
  retryAfterSeconds: number | null
}
export const RECEIVER_BASELINE: ReceiverFaultSettings = { latencyMs: 0, failRate: 0, gone: false, retryAfterSeconds: null }

/** The receiver and the endpoints registered at it (their ids in webhook_endpoints, and the notifier's timeout). */
export interface WebhookTarget {
  readonly receiverUrl: string
  readonly endpointIds: ReadonlyMap<WebhookEndpointName, string>
  readonly timeoutMs: number
}

/** Enable an endpoint the notifier disabled (as the admin API's enable does); whether it was disabled. Retried
 * while PostgreSQL is restarting; a hung database holds it (the window stays open meanwhile). */
export const enableEndpoint = async (n: Nemesis, id: string): Promise<boolean> => {
  for (let attempt = 1; ; attempt++) {
    try {
      return await withClient(n.databaseUrl, async (c) => {
        const r = await c.query(
          `UPDATE webhook_endpoints SET status = 'enabled', disabled_reason = NULL, failing_since = NULL, updated_at = now()
           WHERE id = $1 AND status = 'disabled' RETURNING id`, [id])
        return (r.rowCount ?? 0) > 0
      })
    } catch (e) {
      if (attempt >= 10) throw e
      await sleep(1000)
    }
  }
}

export const injectReceiver = async (n: Nemesis, f: FaultOf<"receiver">, desc: string): Promise<void> => {
  const target = n.webhooks
  if (!target) return n.timeline("skip", `${desc}: no webhook receiver in this run`)
  if (f.mode === "down") {
    const role = n.roles.get("receiver")!
    if (!role.alive) return n.timeline("skip", `${desc}: the receiver is down already`)
    n.count("receiver-down")
    role.kill9()
    const window = n.openWindow("receiver-down", "receiver")
    n.timeline("fault", desc)
    n.after(f.ms, async () => {
      role.restart()
      n.closeWindow(window)
      n.timeline("heal", `receiver restarted (pid ${role.pid})`)
      await n.putReceiverWhenUp()
    })
    return
  }
  const settings = n.receiver.get(f.endpoint)!
  if (f.mode === "gone") {
    if (n.webhookGone.has(f.endpoint)) return n.timeline("skip", `${desc}: ${f.endpoint} is gone already`)
    n.webhookGone.add(f.endpoint)
    n.count("receiver-gone")
    // opened before the receiver can answer 410: the endpoint may be disabled from then on
    const window = n.openWindow(ENDPOINT_DISABLED_WINDOW, f.endpoint)
    settings.gone = true
    await n.putReceiver(f.endpoint)
    n.timeline("fault", desc)
    n.after(f.ms, async () => {
      settings.gone = false
      await n.putReceiver(f.endpoint)
      // a 410 answered just before is still on its way to being recorded (the notifier's timeout bounds the call)
      await sleep(target.timeoutMs + 1000)
      const disabled = await enableEndpoint(n, target.endpointIds.get(f.endpoint)!)
      n.closeWindow(window)
      n.webhookGone.delete(f.endpoint)
      n.timeline("heal", `webhook endpoint ${f.endpoint} answers again; ${disabled ? "enabled again (the notifier had disabled it)" : "it was not disabled"}`)
    })
    return
  }
  n.count(`receiver-${f.mode}`)
  if (f.mode === "slow") settings.latencyMs = f.value ?? 3000
  else {
    settings.failRate = 0.5
    settings.retryAfterSeconds = f.value
  }
  await n.putReceiver(f.endpoint)
  n.timeline("fault", desc)
  n.after(f.ms, async () => {
    if (f.mode === "slow") settings.latencyMs = RECEIVER_BASELINE.latencyMs
    else {
      settings.failRate = RECEIVER_BASELINE.failRate
      settings.retryAfterSeconds = RECEIVER_BASELINE.retryAfterSeconds
    }
    await n.putReceiver(f.endpoint)
    n.timeline("heal", `webhook endpoint ${f.endpoint} ${f.mode} over`)
  })
}
