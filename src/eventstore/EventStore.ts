/**
 * The event store contract (DESIGN §4), one service with a PostgreSQL and an in-memory implementation.
 *
 * `append` is the only way anything is written about an order. In ONE atomic step it stores the events
 * (stream versions expectedVersion+1.., no gap), one outbox row per event, the `orders` projection row of the
 * resulting state, the completed idempotency record when the request carried an Idempotency-Key, and the
 * inbox row when a consumed message caused it.
 * - the stream moved since `expectedVersion` → `ConcurrencyConflict`, nothing written;
 * - every event id is already stored (a retried append) → success, nothing written (`duplicate: true`).
 */
import { Context, Data, type Effect } from "effect"
import type { Order, OrderEvent, OrderId } from "../domain/Order.js"

export interface EventMetadata {
  readonly correlationId?: string | undefined
  readonly causationId?: string | undefined
  readonly traceparent?: string | undefined
  readonly tracestate?: string | undefined
}

export interface RecordedEvent {
  readonly position: bigint
  readonly streamId: OrderId
  readonly version: number
  readonly schemaVersion: number
  readonly event: OrderEvent
  readonly metadata: EventMetadata
  readonly recordedAt: Date
}

/** The stored answer to a request made with an Idempotency-Key. */
export interface IdempotentResponse {
  readonly key: string
  readonly status: number
  readonly body: unknown
}

export interface AppendRequest {
  readonly streamId: OrderId
  readonly expectedVersion: number
  readonly events: ReadonlyArray<OrderEvent>
  /** The order after the events: written to the `orders` projection in the same transaction. */
  readonly state: Order
  readonly metadata: EventMetadata
  readonly idempotency?: IdempotentResponse | undefined
  /** For a command caused by a consumed message: its inbox row, written in the same transaction. */
  readonly inbox?: InboxEntry | undefined
}

/** A message a consumer has finished: (consumer, message id) is stored once. */
export interface InboxEntry {
  readonly consumer: string
  readonly messageId: string
}

export interface AppendResult {
  /** Stream version after the append (for a duplicate append: the stream's current version). */
  readonly version: number
  /** True when every event id was already stored: nothing was written. */
  readonly duplicate: boolean
}

export class ConcurrencyConflict extends Data.TaggedError("ConcurrencyConflict")<{
  readonly streamId: OrderId
  readonly expectedVersion: number
  readonly actualVersion: number
}> {}

export class EventStore extends Context.Tag("EventStore")<EventStore, {
  readonly append: (request: AppendRequest) => Effect.Effect<AppendResult, ConcurrencyConflict>
  /** The stream's events in version order (empty for an unknown stream). */
  readonly readStream: (streamId: OrderId) => Effect.Effect<ReadonlyArray<RecordedEvent>>
}>() {}
