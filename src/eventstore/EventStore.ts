/**
 * The event store contract (docs/ARCHITECTURE.md "Event store contract"), one service with a PostgreSQL and an
 * in-memory implementation.
 *
 * The store knows streams and events only. `append` stores the events (stream versions expectedVersion+1..,
 * no gap) and, in the same atomic step, whatever the inline projections registered with the store write for
 * them (src/eventstore/InlineProjection.ts: the `orders` row, the outbox rows, the idempotency record, the
 * inbox row — each defined by its owner). What a projection needs beyond the events the caller hands over in
 * `inputs`, under the projection's own tag: the order after the events (`OrderAfterAppend`, every append), and
 * the caller's own participants (`AppendParticipants`: a key's completion, a message's inbox row), which
 * whoever carries them to the store (the order actor) passes on without knowing what they are.
 * - the stream moved since `expectedVersion` → `ConcurrencyConflict`, nothing written;
 * - every event id is already stored (a retried append) → success, nothing written (`duplicate: true`);
 * - the database fails → StoreUnavailable (transient) or StoreFailed (permanent), src/Infrastructure.ts.
 */
import { Context, Data, type Effect } from "effect"
import type { Order, OrderEvent, OrderId } from "../domain/Order.js"
import type { Deadline } from "../Batcher.js"
import type { StoreError, StoreUnavailable } from "../Infrastructure.js"

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

export interface AppendRequest {
  readonly streamId: OrderId
  readonly expectedVersion: number
  readonly events: ReadonlyArray<OrderEvent>
  readonly metadata: EventMetadata
  /** For the inline projections, each under its own tag (e.g. the order after the events); read by them only. */
  readonly inputs: Context.Context<never>
  /** The caller's request deadline: still waiting for a batched append then, it is answered the deadline's
   * error (the append dropped if it had not started; else it completes or fails on its own). */
  readonly deadline?: Deadline<StoreUnavailable> | undefined
}

/** The order after an append's events, as the caller decided it: in every append's inputs (the `orders` row). */
export class OrderAfterAppend extends Context.Tag("OrderAfterAppend")<OrderAfterAppend, Order>() {}

/**
 * What a caller has written in the transaction of the append its command makes, besides the events: inputs of
 * inline projections under their own tags (src/idempotency/IdempotencyCompletion.ts `completesKey`,
 * src/inbox/Inbox.ts `finishesMessage`), made from the order after the append. Opaque to those who pass it on.
 */
export type AppendParticipants = (order: Order) => Context.Context<never>

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
  readonly append: (request: AppendRequest) => Effect.Effect<AppendResult, ConcurrencyConflict | StoreError>
  /** The stream's events in version order (empty for an unknown stream). */
  readonly readStream: (streamId: OrderId) => Effect.Effect<ReadonlyArray<RecordedEvent>, StoreError>
}>() {}
