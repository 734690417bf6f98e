/**
 * The nemesis: executes a fault schedule (schedule.ts draws it from a seed) against the running processes,
 * the broker, PostgreSQL, the provider simulator and the topic. Faults may overlap. This module holds the
 * timing — starting each fault at its time, ending it after its duration, tracking the actions in flight —
 * and heal(), which ends every fault still in progress and brings every process back; what each fault does
 * is in faults/ (processes.ts, infra.ts, messages.ts), which use the members marked below.
 */
import type { Broker } from "./broker.js"
import type { FaultWindow } from "./checks/common.js"
import { injectBrokerKill, injectBrokerPause, injectProvider, PROVIDER_BASELINE, type ProviderSettings } from "./faults/infra.js"
import { type InjectedHostile, injectDuplicate, injectHostile } from "./faults/messages.js"
import { injectPgHang, injectPgKill, injectPgRestart } from "./faults/postgres.js"
import { injectKill, injectPause, injectTerm } from "./faults/processes.js"
import { enableEndpoint, injectReceiver, RECEIVER_BASELINE, type ReceiverFaultSettings, type WebhookTarget } from "./faults/receiver.js"
import type { Injector, Observer } from "./kafkaio.js"
import type { PgCluster } from "./postgres.js"
import type { Prng } from "./prng.js"
import type { RoleName, RoleProcess, Timeline } from "./procs.js"
import { ENDPOINT_DISABLED_WINDOW } from "./checks/webhooks.js"
import { describeFault, type Fault, WEBHOOK_ENDPOINTS, type WebhookEndpointName } from "./schedule.js"

export class Nemesis {
  readonly injectedHostile: Array<InjectedHostile> = []
  readonly termResults: Array<{ role: RoleName; exitedInMs: number | null; at: number }> = []
  readonly counts = new Map<string, number>()
  duplicatesSent = 0
  /** last time an api process was killed or paused (its Idempotency-Key claims are then left to the lease) */
  lastApiDisruption = 0
  /** when each fault that lasts was in effect (PostgreSQL hung or restarting, a role down or stopped): the
   * checker reads the requests of those times against them (invariant 11) */
  readonly windows: Array<FaultWindow> = []
  /** a pg-hang / a pg-restart in progress (one of each at a time) */
  pgHang = false
  pgRestarting = false
  private timers = new Set<NodeJS.Timeout>()
  private heals = new Set<() => Promise<void> | void>()
  private busy = new Set<Promise<void>>()
  /** the provider simulator's settings now (the provider faults change them, heal() restores the baseline) */
  provider: ProviderSettings = { ...PROVIDER_BASELINE }
  /** each webhook endpoint's settings at the receiver now (the receiver faults change them) */
  readonly receiver = new Map<WebhookEndpointName, ReceiverFaultSettings>(WEBHOOK_ENDPOINTS.map((name) => [name, { ...RECEIVER_BASELINE }]))
  /** the endpoints answering 410 now (one gone fault per endpoint at a time) */
  readonly webhookGone = new Set<WebhookEndpointName>()
  private healing = false

  // the constructor's members but providerUrl, and count, after, track and putProvider: used by faults/
  constructor(
    readonly rng: Prng,
    readonly roles: Map<RoleName, RoleProcess>,
    readonly broker: Broker,
    readonly databaseUrl: string,
    readonly database: string,
    /** the run's own PostgreSQL cluster (pg-hang, pg-restart), or null when the run uses another server */
    readonly cluster: PgCluster | null,
    private readonly providerUrl: string,
    readonly topic: string,
    readonly observer: Observer,
    readonly injector: Injector,
    readonly timeline: Timeline,
    /** the webhook receiver and its endpoints (family receiver) */
    readonly webhooks: WebhookTarget | null = null
  ) {}

  openWindow(kind: string, role: RoleName | WebhookEndpointName | null): FaultWindow {
    const w: FaultWindow = { kind, role, from: Date.now(), to: null }
    this.windows.push(w)
    return w
  }

  closeWindow(w: FaultWindow) {
    if (w.to === null) w.to = Date.now()
  }

  count(kind: string) {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1)
  }

  /** end a fault after ms (or at once, once the heal has begun): heal() runs whatever is still due */
  after(ms: number, heal: () => Promise<void> | void) {
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

  track(p: Promise<unknown>) {
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

  async putReceiver(name: WebhookEndpointName): Promise<void> {
    if (!this.webhooks) return
    try {
      const r = await fetch(`${this.webhooks.receiverUrl}/control/${name}`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(this.receiver.get(name)),
        signal: AbortSignal.timeout(3000)
      })
      if (!r.ok) this.timeline("error", `receiver control ${name}: ${r.status} ${(await r.text()).slice(0, 200)}`)
    } catch (e) {
      this.timeline("note", `receiver control not reachable (${String((e as Error).cause ?? e).slice(0, 80)}); applied when it is back`)
    }
  }

  /** Once a restarted receiver answers, give it every endpoint's current settings (a fault in progress goes on).
   * A start takes 3 s of CPU, and up to 25 s here while every role competes for two cores. */
  async putReceiverWhenUp(): Promise<void> {
    if (!this.webhooks) return
    const until = Date.now() + 60_000
    while (Date.now() < until) {
      const up = await fetch(`${this.webhooks.receiverUrl}/control/all`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false)
      if (up) break
      await new Promise((r) => setTimeout(r, 200))
    }
    for (const name of WEBHOOK_ENDPOINTS) await this.putReceiver(name)
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
      case "kill": return injectKill(this, f, desc)
      case "pause": return injectPause(this, f, desc)
      case "term": return injectTerm(this, f, desc)
      case "broker-kill": return injectBrokerKill(this, f, desc)
      case "broker-pause": return injectBrokerPause(this, f, desc)
      case "pg-kill": return injectPgKill(this, desc)
      case "pg-hang": return injectPgHang(this, f, desc)
      case "pg-restart": return injectPgRestart(this, f, desc)
      case "provider": return injectProvider(this, f, desc)
      case "duplicate": return injectDuplicate(this, f, desc)
      case "hostile": return injectHostile(this, f, desc)
      case "receiver": return injectReceiver(this, f, desc)
    }
  }

  /** End every fault still in progress and start no other, without the rest of the heal: for a schedule that
   * failed before its heal, so that no fault of it (a hang's SIGSTOPs above all) outlives it. Idempotent. */
  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    this.healing = true
    this.cluster?.continueAll()
    for (const h of [...this.heals]) await (async () => h())().catch((e) => this.timeline("error", `nemesis: ${String(e).slice(0, 300)}`))
  }

  /** End every fault in progress, bring every process and the broker back, restore the provider. */
  async heal(): Promise<void> {
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    // first let everything run again: a fault in progress (a send to a stopped broker) may wait for it
    this.broker.resume()
    this.cluster?.continueAll()
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
    this.cluster?.continueAll()
    await this.cluster?.ensureRunning()
    for (const role of this.roles.values()) {
      role.resume()
      if (!role.alive) {
        if (role.spec.name.startsWith("api")) this.lastApiDisruption = Date.now()
        role.restart()
      }
    }
    this.provider = { ...PROVIDER_BASELINE }
    for (const name of WEBHOOK_ENDPOINTS) this.receiver.set(name, { ...RECEIVER_BASELINE })
    await new Promise((r) => setTimeout(r, 2500))
    await this.putProvider()
    await this.putReceiverWhenUp()
    await this.enableGoneEndpoints()
    for (const w of this.windows) this.closeWindow(w)
    this.timeline("heal", "healed: every process running, broker and PostgreSQL up, provider and webhook receiver at their baseline")
  }

  /** An endpoint disabled by a 410 recorded late (a notifier resumed, a database that hung) after its gone fault
   * ended is enabled again, and its window stretched to now; one disabled with no gone fault is left so. */
  private async enableGoneEndpoints(): Promise<void> {
    if (!this.webhooks) return
    for (const [name, id] of this.webhooks.endpointIds) {
      const windows = this.windows.filter((w) => w.kind === ENDPOINT_DISABLED_WINDOW && w.role === name)
      if (windows.length === 0) continue
      if (await enableEndpoint(this, id).catch(() => false)) {
        windows.at(-1)!.to = Date.now()
        this.timeline("heal", `webhook endpoint ${name} was disabled after its gone fault (a 410 recorded late): enabled again`)
      }
    }
  }
}
