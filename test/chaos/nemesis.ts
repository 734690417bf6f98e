/**
 * The nemesis: a random fault schedule drawn from a seed (the same seed and duration give the same schedule),
 * executed against the running processes, the broker, PostgreSQL, the provider simulator and the topic.
 * Faults may overlap. heal() ends every fault still in progress and brings every process back.
 */
import pg from "pg"
import type { Injector, Observer } from "./kafkaio.js"
import type { Prng } from "./prng.js"
import type { Broker } from "./broker.js"
import { ROLE_NAMES, type RoleName, type RoleProcess, type Timeline } from "./procs.js"

/** Fault families, as named on the command line (--faults) and in CHAOS_FAULTS. */
export const FAULT_FAMILIES = ["kill", "pause", "term", "broker", "pg", "provider", "duplicate", "hostile"] as const
export type FaultFamily = (typeof FAULT_FAMILIES)[number]

export type Fault =
  | { readonly kind: "kill"; readonly at: number; readonly role: RoleName; readonly downMs: number }
  | { readonly kind: "pause"; readonly at: number; readonly role: RoleName; readonly ms: number }
  | { readonly kind: "term"; readonly at: number; readonly role: RoleName }
  | { readonly kind: "broker-kill"; readonly at: number; readonly downMs: number }
  | { readonly kind: "broker-pause"; readonly at: number; readonly ms: number }
  | { readonly kind: "pg-kill"; readonly at: number }
  | { readonly kind: "provider"; readonly at: number; readonly mode: "outage" | "latency" | "decline" | "transient"; readonly ms: number; readonly value: number }
  | { readonly kind: "duplicate"; readonly at: number; readonly count: number }
  | { readonly kind: "hostile"; readonly at: number; readonly variant: HostileVariant }

export const HOSTILE_VARIANTS = ["garbage", "nul", "deep-array", "deep-object", "wrong-shape", "empty", "invalid-utf8"] as const
export type HostileVariant = (typeof HOSTILE_VARIANTS)[number]

const familyOf = (f: Fault["kind"]): FaultFamily =>
  f === "broker-kill" || f === "broker-pause" ? "broker" : f === "pg-kill" ? "pg" : f

/** How long SIGTERM may take before the role counts as hung (graceful shutdown within a deadline:
 * docs/ARCHITECTURE.md "Processes"). */
export const TERM_DEADLINE_MS = 15_000

export const drawSchedule = (rng: Prng, durationMs: number, families: ReadonlyArray<FaultFamily>): Array<Fault> => {
  const kinds: Array<Fault["kind"]> = []
  for (const k of ["kill", "pause", "term", "broker-kill", "broker-pause", "pg-kill", "provider", "duplicate", "hostile"] as const) {
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
  }
}

export const hostileBytes = (rng: Prng, variant: HostileVariant): Buffer => {
  switch (variant) {
    case "garbage": return rng.bytes(rng.int(8, 64))
    case "nul": return Buffer.from([0x7b, 0x00, 0x7d])
    case "deep-array": return Buffer.from("[".repeat(100_000) + "]".repeat(100_000))
    case "deep-object": return Buffer.from("{\"a\":".repeat(20_000) + "1" + "}".repeat(20_000))
    case "wrong-shape": return Buffer.from(JSON.stringify({ eventId: "not-a-uuid", type: "OrderPlaced", orderId: 42, data: null }))
    case "empty": return Buffer.alloc(0)
    case "invalid-utf8": return Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0xff, 0x22, 0x7d])
  }
}

export interface InjectedHostile {
  readonly variant: HostileVariant
  readonly key: string
  readonly bytes: Buffer
  readonly partition: number
  readonly offset: string
}

export interface ProviderSettings {
  latencyMs: number
  declineRate: number
  transientErrorRate: number
  outage: boolean
}
export const PROVIDER_BASELINE: ProviderSettings = { latencyMs: 20, declineRate: 0, transientErrorRate: 0, outage: false }

export class Nemesis {
  readonly injectedHostile: Array<InjectedHostile> = []
  readonly termResults: Array<{ role: RoleName; exitedInMs: number | null; at: number }> = []
  readonly counts = new Map<string, number>()
  duplicatesSent = 0
  /** last time an api process was killed or paused (its Idempotency-Key claims are then left to the lease) */
  lastApiDisruption = 0
  private timers = new Set<NodeJS.Timeout>()
  private heals = new Set<() => Promise<void> | void>()
  private busy = new Set<Promise<void>>()
  private provider: ProviderSettings = { ...PROVIDER_BASELINE }
  private healing = false

  constructor(
    private readonly rng: Prng,
    private readonly roles: Map<RoleName, RoleProcess>,
    private readonly broker: Broker,
    private readonly databaseUrl: string,
    private readonly providerUrl: string,
    private readonly topic: string,
    private readonly observer: Observer,
    private readonly injector: Injector,
    private readonly timeline: Timeline
  ) {}

  private count(kind: string) {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1)
  }

  private after(ms: number, heal: () => Promise<void> | void) {
    if (this.healing) return this.track(Promise.resolve(heal()))
    const once = () => {
      if (!this.heals.has(once)) return
      this.heals.delete(once)
      this.timers.delete(t)
      return heal()
    }
    this.heals.add(once)
    const t = setTimeout(() => this.track(Promise.resolve(once())), ms)
    this.timers.add(t)
  }

  private track(p: Promise<unknown>) {
    const q = p.then(() => undefined, (e) => this.timeline("error", `nemesis: ${String(e).slice(0, 300)}`))
    this.busy.add(q)
    q.finally(() => this.busy.delete(q))
  }

  async putProvider(): Promise<void> {
    try {
      await fetch(`${this.providerUrl}/control`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(this.provider),
        signal: AbortSignal.timeout(3000)
      })
    } catch (e) {
      this.timeline("note", `provider control not reachable (${String((e as Error).cause ?? e).slice(0, 80)}); applied when it is back`)
    }
  }

  /** Start every fault at its time (relative to now). */
  run(faults: ReadonlyArray<Fault>): void {
    for (const f of faults) {
      const t = setTimeout(() => {
        this.timers.delete(t)
        this.track(this.inject(f))
      }, f.at)
      this.timers.add(t)
    }
  }

  private async inject(f: Fault): Promise<void> {
    const desc = describeFault(f)
    if (this.healing) return this.timeline("skip", `${desc}: the heal has begun`)
    switch (f.kind) {
      case "kill": {
        const role = this.roles.get(f.role)!
        if (!role.alive) return this.timeline("skip", `${desc}: ${f.role} is down already`)
        this.count("kill")
        if (f.role.startsWith("api")) this.lastApiDisruption = Date.now()
        role.kill9()
        this.timeline("fault", desc)
        this.after(f.downMs, () => {
          if (f.role.startsWith("api")) this.lastApiDisruption = Date.now()
          role.restart()
          this.timeline("heal", `${f.role} restarted (pid ${role.pid})`)
          if (f.role === "provider") this.track(new Promise((r) => setTimeout(r, 2500)).then(() => this.putProvider()))
        })
        return
      }
      case "pause": {
        const role = this.roles.get(f.role)!
        if (!role.pause()) return this.timeline("skip", `${desc}: ${f.role} is down or paused already`)
        this.count("pause")
        if (f.role.startsWith("api")) this.lastApiDisruption = Date.now()
        this.timeline("fault", desc)
        this.after(f.ms, () => {
          role.resume()
          if (f.role.startsWith("api")) this.lastApiDisruption = Date.now()
          this.timeline("heal", `SIGCONT ${f.role}`)
        })
        return
      }
      case "term": {
        const role = this.roles.get(f.role)!
        if (!role.alive) return this.timeline("skip", `${desc}: ${f.role} is down already`)
        this.count("term")
        if (f.role.startsWith("api")) this.lastApiDisruption = Date.now()
        this.timeline("fault", desc)
        const at = Date.now()
        const result = await role.term(TERM_DEADLINE_MS)
        this.termResults.push({ role: f.role, exitedInMs: result.exitedInMs, at })
        this.timeline(
          result.exitedInMs === null ? "finding" : "note",
          result.exitedInMs === null
            ? `${f.role} did NOT exit within ${TERM_DEADLINE_MS} ms of SIGTERM: killed -9`
            : `${f.role} exited ${result.exitedInMs} ms after SIGTERM (code ${result.code})`
        )
        role.restart()
        if (f.role.startsWith("api")) this.lastApiDisruption = Date.now()
        this.timeline("heal", `${f.role} restarted (pid ${role.pid})`)
        if (f.role === "provider") await new Promise((r) => setTimeout(r, 2500)).then(() => this.putProvider())
        return
      }
      case "broker-kill": {
        if (this.broker.down) return this.timeline("skip", `${desc}: broker is down already`)
        this.count("broker-kill")
        this.broker.kill9()
        this.timeline("fault", desc)
        this.after(f.downMs, () => this.broker.restart())
        return
      }
      case "broker-pause": {
        if (!this.broker.pause()) return this.timeline("skip", `${desc}: broker is down or paused`)
        this.count("broker-pause")
        this.timeline("fault", desc)
        this.after(f.ms, () => {
          this.broker.resume()
          this.timeline("heal", "SIGCONT broker")
        })
        return
      }
      case "pg-kill": {
        this.count("pg-kill")
        const client = new pg.Client({ connectionString: this.databaseUrl })
        try {
          await client.connect()
          const r = await client.query(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`
          )
          this.timeline("fault", `${desc}: ${r.rowCount} terminated`)
        } finally {
          await client.end().catch(() => undefined)
        }
        return
      }
      case "provider": {
        this.count(`provider-${f.mode}`)
        const field = f.mode === "outage" ? "outage" : f.mode === "latency" ? "latencyMs" : f.mode === "decline" ? "declineRate" : "transientErrorRate"
        ;(this.provider as unknown as Record<string, unknown>)[field] = f.mode === "outage" ? true : f.value
        await this.putProvider()
        this.timeline("fault", desc)
        this.after(f.ms, async () => {
          ;(this.provider as unknown as Record<string, unknown>)[field] = (PROVIDER_BASELINE as unknown as Record<string, unknown>)[field]
          await this.putProvider()
          this.timeline("heal", `provider ${f.mode} over`)
        })
        return
      }
      case "duplicate": {
        const seen = this.observer.seen
        if (seen.length === 0) return this.timeline("skip", `${desc}: no message seen yet`)
        this.count("duplicate")
        let sent = 0
        for (let i = 0; i < f.count; i++) {
          const m = this.rng.pick(seen)
          const r = await this.injector.send(this.topic, m.key, m.value ?? Buffer.alloc(0), m.headers)
          if ("partition" in r) sent++
        }
        this.duplicatesSent += sent
        this.timeline("fault", `${desc}: ${sent} sent`)
        return
      }
      case "hostile": {
        this.count(`hostile-${f.variant}`)
        const bytes = hostileBytes(this.rng, f.variant)
        const key = this.rng.uuid()
        const r = await this.injector.send(this.topic, key, bytes, { "chaos-hostile": f.variant })
        if ("error" in r) return this.timeline("skip", `${desc}: not delivered (${r.error.slice(0, 120)})`)
        this.injectedHostile.push({ variant: f.variant, key, bytes, partition: r.partition, offset: r.offset })
        this.timeline("fault", `${desc} (${bytes.length} bytes, key ${key}) at partition ${r.partition} offset ${r.offset}`)
        return
      }
    }
  }

  /** End every fault in progress, bring every process and the broker back, restore the provider. */
  async heal(): Promise<void> {
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    // first let everything run again: a fault in progress (a send to a stopped broker) may wait for it
    this.broker.resume()
    for (const role of this.roles.values()) role.resume()
    this.healing = true
    for (const h of [...this.heals]) await h() // each removes itself from this.heals
    const stillBusy = await Promise.race([
      Promise.allSettled([...this.busy]).then(() => false),
      new Promise<boolean>((r) => setTimeout(() => r(true), 30_000))
    ])
    if (stillBusy) this.timeline("note", `${this.busy.size} fault action(s) still running 30 s into the heal; going on`)
    this.broker.resume()
    if (this.broker.down) await this.broker.restart()
    for (const role of this.roles.values()) {
      role.resume()
      if (!role.alive) {
        if (role.spec.name.startsWith("api")) this.lastApiDisruption = Date.now()
        role.restart()
      }
    }
    this.provider = { ...PROVIDER_BASELINE }
    await new Promise((r) => setTimeout(r, 2500))
    await this.putProvider()
    this.timeline("heal", "healed: every process running, broker up, provider at its baseline")
  }
}
