/**
 * The in-memory stand-in for the PostgreSQL database: the tables the memory layers of the event store, the
 * projection and the idempotency keys share, so one `append` can write all of them atomically (JavaScript runs
 * it without interleaving). For tests and the fast property runs.
 */
import { Context, Layer } from "effect"
import type { Order } from "../domain/Order.js"
import type { RecordedEvent } from "./EventStore.js"

export interface MemoryIdempotencyRecord {
  readonly key: string
  readonly fingerprint: string
  status: "in_flight" | "completed"
  response: { readonly status: number; readonly body: unknown } | null
  lockedAt: number
}

export interface MemoryOutboxRow {
  readonly position: bigint
  readonly streamId: string
  publishedAt: Date | null
}

export class MemoryDatabase extends Context.Tag("MemoryDatabase")<MemoryDatabase, {
  readonly events: Array<RecordedEvent>
  readonly streams: Map<string, Array<RecordedEvent>>
  readonly eventIds: Set<string>
  readonly outbox: Array<MemoryOutboxRow>
  readonly orders: Map<string, Order>
  readonly idempotency: Map<string, MemoryIdempotencyRecord>
  /** inbox rows as `${consumer}/${messageId}` */
  readonly inbox: Set<string>
}>() {
  static readonly layer = Layer.sync(MemoryDatabase, () => ({
    events: [],
    streams: new Map(),
    eventIds: new Set<string>(),
    outbox: [],
    orders: new Map(),
    idempotency: new Map(),
    inbox: new Set<string>()
  }))
}
