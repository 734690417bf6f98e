/**
 * Faults on what the roles depend on (families broker and provider; PostgreSQL's are in postgres.ts): kill -9
 * or SIGSTOP of the suite's broker, and the provider simulator's outage, latency, declines or transient errors
 * for a while (set through its /control endpoint by the nemesis).
 */
import type { Nemesis } from "../nemesis.js"
import type { FaultOf } from "../schedule.js"

export interface ProviderSettings {
  latencyMs: number
  declineRate: number
  transientErrorRate: number
  outage: boolean
}
export const PROVIDER_BASELINE: ProviderSettings = { latencyMs: 20, declineRate: 0, transientErrorRate: 0, outage: false }

export const injectBrokerKill = (n: Nemesis, f: FaultOf<"broker-kill">, desc: string): void => {
  if (n.broker.down) return n.timeline("skip", `${desc}: broker is down already`)
  n.count("broker-kill")
  n.broker.kill9()
  n.timeline("fault", desc)
  n.after(f.downMs, () => n.broker.restart())
}

export const injectBrokerPause = (n: Nemesis, f: FaultOf<"broker-pause">, desc: string): void => {
  if (!n.broker.pause()) return n.timeline("skip", `${desc}: broker is down or paused`)
  n.count("broker-pause")
  n.timeline("fault", desc)
  n.after(f.ms, () => {
    n.broker.resume()
    n.timeline("heal", "SIGCONT broker")
  })
}

export const injectProvider = async (n: Nemesis, f: FaultOf<"provider">, desc: string): Promise<void> => {
  n.count(`provider-${f.mode}`)
  const field = f.mode === "outage" ? "outage" : f.mode === "latency" ? "latencyMs" : f.mode === "decline" ? "declineRate" : "transientErrorRate"
  ;(n.provider as unknown as Record<string, unknown>)[field] = f.mode === "outage" ? true : f.value
  await n.putProvider()
  n.timeline("fault", desc)
  n.after(f.ms, async () => {
    ;(n.provider as unknown as Record<string, unknown>)[field] = (PROVIDER_BASELINE as unknown as Record<string, unknown>)[field]
    await n.putProvider()
    n.timeline("heal", `provider ${f.mode} over`)
  })
}
