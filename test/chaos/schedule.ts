/**
 * The fault schedule: the fault families and kinds, drawing a random schedule from a seed (the same seed,
 * duration and families give the same schedule) and describing a fault in words. Executing the faults is
 * the nemesis's (nemesis.ts, with each family in faults/).
 */
import type { Prng } from "./prng.js"
import { ROLE_NAMES, type RoleName } from "./procs.js"

/** Fault families, as named on the command line (--faults) and in CHAOS_FAULTS. */
export const FAULT_FAMILIES = ["kill", "pause", "term", "broker", "pg", "provider", "duplicate", "hostile", "pg-hang", "pg-restart", "receiver"] as const
export type FaultFamily = (typeof FAULT_FAMILIES)[number]

export type Fault =
  | { readonly kind: "kill"; readonly at: number; readonly role: RoleName; readonly downMs: number }
  | { readonly kind: "pause"; readonly at: number; readonly role: RoleName; readonly ms: number }
  | { readonly kind: "term"; readonly at: number; readonly role: RoleName }
  | { readonly kind: "broker-kill"; readonly at: number; readonly downMs: number }
  | { readonly kind: "broker-pause"; readonly at: number; readonly ms: number }
  | { readonly kind: "pg-kill"; readonly at: number }
  | { readonly kind: "pg-hang"; readonly at: number; readonly ms: number }
  | { readonly kind: "pg-restart"; readonly at: number; readonly downMs: number }
  | { readonly kind: "provider"; readonly at: number; readonly mode: "outage" | "latency" | "decline" | "transient"; readonly ms: number; readonly value: number }
  | { readonly kind: "duplicate"; readonly at: number; readonly count: number }
  | { readonly kind: "hostile"; readonly at: number; readonly variant: HostileVariant }
  | {
    readonly kind: "receiver"
    readonly at: number
    readonly mode: ReceiverMode
    /** the receiver's endpoint (a name under /hooks/) the fault is on; down takes both */
    readonly endpoint: WebhookEndpointName
    readonly ms: number
    /** slow: the latency (ms, beyond the notifier's timeout); failing: the Retry-After (s) sent with the 500s, or null */
    readonly value: number | null
  }

/** The webhook receiver's faults: the process down (killed, started again after ms), slow (every answer after
 * more than the notifier's timeout), failing (half the deliveries answered 500), gone (410: the notifier fails
 * the delivery and disables the endpoint, which the nemesis enables again when the fault ends). */
export const RECEIVER_MODES = ["down", "slow", "failing", "gone"] as const
export type ReceiverMode = (typeof RECEIVER_MODES)[number]
/** The two endpoints the runner registers at the receiver: every event type, and order.paid only. */
export const WEBHOOK_ENDPOINTS = ["all", "paid"] as const
export type WebhookEndpointName = (typeof WEBHOOK_ENDPOINTS)[number]

export const HOSTILE_VARIANTS = ["garbage", "nul", "deep-array", "deep-object", "wrong-shape", "empty", "invalid-utf8"] as const
export type HostileVariant = (typeof HOSTILE_VARIANTS)[number]

const familyOf = (f: Fault["kind"]): FaultFamily =>
  f === "broker-kill" || f === "broker-pause" ? "broker" : f === "pg-kill" ? "pg" : f

/** How long SIGTERM may take before the role counts as hung (graceful shutdown within a deadline:
 * docs/ARCHITECTURE.md "Processes"). */
export const TERM_DEADLINE_MS = 15_000

export const drawSchedule = (rng: Prng, durationMs: number, families: ReadonlyArray<FaultFamily>): Array<Fault> => {
  const kinds: Array<Fault["kind"]> = []
  // new kinds go at the end: a seed then gives the schedule it gave before under the families it had
  for (const k of ["kill", "pause", "term", "broker-kill", "broker-pause", "pg-kill", "provider", "duplicate", "hostile", "pg-hang", "pg-restart", "receiver"] as const) {
    if (families.includes(familyOf(k))) kinds.push(k)
  }
  if (kinds.length === 0) return []
  const count = Math.max(3, Math.round(durationMs / 5000))
  const faults: Array<Fault> = []
  for (let i = 0; i < count; i++) {
    const at = rng.int(1000, Math.max(1500, durationMs - 2000))
    const kind = rng.pick(kinds)
    switch (kind) {
      case "kill":
        faults.push({ kind, at, role: rng.pick(ROLE_NAMES), downMs: rng.int(200, 5000) })
        break
      case "pause":
        faults.push({ kind, at, role: rng.pick(ROLE_NAMES), ms: rng.int(1000, 20_000) })
        break
      case "term":
        faults.push({ kind, at, role: rng.pick(ROLE_NAMES) })
        break
      case "broker-kill":
        faults.push({ kind, at, downMs: rng.int(1000, 5000) })
        break
      case "broker-pause":
        faults.push({ kind, at, ms: rng.int(1000, 20_000) })
        break
      case "pg-kill":
        faults.push({ kind, at })
        break
      case "provider": {
        const mode = rng.pick(["outage", "latency", "decline", "transient"] as const)
        const value = mode === "latency" ? rng.int(300, 4000) : mode === "outage" ? 1 : rng.int(30, 100) / 100
        faults.push({ kind, at, mode, ms: rng.int(2000, 12_000), value })
        break
      }
      case "duplicate":
        faults.push({ kind, at, count: rng.int(3, 25) })
        break
      case "hostile":
        faults.push({ kind, at, variant: rng.pick(HOSTILE_VARIANTS) })
        break
      case "pg-hang":
        faults.push({ kind, at, ms: rng.int(2000, 15_000) })
        break
      case "pg-restart":
        faults.push({ kind, at, downMs: rng.int(0, 3000) })
        break
      case "receiver": {
        const mode = rng.pick(RECEIVER_MODES)
        const endpoint = rng.pick(WEBHOOK_ENDPOINTS)
        const ms = mode === "down" ? rng.int(1000, 10_000) : rng.int(2000, 12_000)
        const value = mode === "slow" ? rng.int(2500, 6000) : mode === "failing" ? rng.pick([null, 1, 3]) : null
        faults.push({ kind, at, mode, endpoint, ms, value })
        break
      }
    }
  }
  return faults.sort((a, b) => a.at - b.at)
}

export const describeFault = (f: Fault): string => {
  switch (f.kind) {
    case "kill": return `kill -9 ${f.role}, restart after ${f.downMs} ms`
    case "pause": return `SIGSTOP ${f.role} for ${f.ms} ms`
    case "term": return `SIGTERM ${f.role} (deadline ${TERM_DEADLINE_MS} ms), then restart`
    case "broker-kill": return `kill -9 broker, restart after ${f.downMs} ms`
    case "broker-pause": return `SIGSTOP broker for ${f.ms} ms`
    case "pg-kill": return "pg_terminate_backend of every app connection"
    case "provider": return `provider ${f.mode}${f.mode === "outage" ? "" : ` ${f.value}`} for ${f.ms} ms`
    case "duplicate": return `republish ${f.count} earlier messages`
    case "hostile": return `hostile message: ${f.variant}`
    case "pg-hang": return `SIGSTOP every backend of the schedule's database (and each new one) for ${f.ms} ms`
    case "pg-restart": return `fast restart of PostgreSQL (pg_ctl stop -m fast, down ${f.downMs} ms, start)`
    case "receiver":
      switch (f.mode) {
        case "down": return `kill -9 the webhook receiver, restart after ${f.ms} ms`
        case "slow": return `webhook endpoint ${f.endpoint} answers after ${f.value} ms for ${f.ms} ms`
        case "failing": return `webhook endpoint ${f.endpoint} answers 500 to half the deliveries${f.value === null ? "" : ` (Retry-After ${f.value} s)`} for ${f.ms} ms`
        case "gone": return `webhook endpoint ${f.endpoint} answers 410 Gone for ${f.ms} ms, then enabled again`
      }
  }
}

/** One kind of fault, as its executor in faults/ takes it. */
export type FaultOf<K extends Fault["kind"]> = Extract<Fault, { readonly kind: K }>
