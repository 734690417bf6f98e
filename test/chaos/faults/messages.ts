/**
 * Faults on the events topic (families duplicate and hostile): republishing earlier messages, and hostile
 * messages (bytes no consumer can decode) whose exact bytes and offsets are kept for the checker.
 */
import type { Nemesis } from "../nemesis.js"
import type { Prng } from "../prng.js"
import type { FaultOf, HostileVariant } from "../schedule.js"

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

export const injectDuplicate = async (n: Nemesis, f: FaultOf<"duplicate">, desc: string): Promise<void> => {
  const seen = n.observer.seen
  if (seen.length === 0) return n.timeline("skip", `${desc}: no message seen yet`)
  n.count("duplicate")
  let sent = 0
  for (let i = 0; i < f.count; i++) {
    const m = n.rng.pick(seen)
    const r = await n.injector.send(n.topic, m.key, m.value ?? Buffer.alloc(0), m.headers)
    if ("partition" in r) sent++
  }
  n.duplicatesSent += sent
  n.timeline("fault", `${desc}: ${sent} sent`)
}

export const injectHostile = async (n: Nemesis, f: FaultOf<"hostile">, desc: string): Promise<void> => {
  n.count(`hostile-${f.variant}`)
  const bytes = hostileBytes(n.rng, f.variant)
  const key = n.rng.uuid()
  const r = await n.injector.send(n.topic, key, bytes, { "chaos-hostile": f.variant })
  if ("error" in r) return n.timeline("skip", `${desc}: not delivered (${r.error.slice(0, 120)})`)
  n.injectedHostile.push({ variant: f.variant, key, bytes, partition: r.partition, offset: r.offset })
  n.timeline("fault", `${desc} (${bytes.length} bytes, key ${key}) at partition ${r.partition} offset ${r.offset}`)
}
