/**
 * The stores of one process, composed once from each owner's part: the event store with the inline
 * projections every append writes in its transaction (the `orders` row, one outbox row per event, the
 * completed Idempotency-Key record, the inbox row), the reads, the claims, the outbox and its wake-up — over
 * PostgreSQL, or over one in-memory database for tests and properties (docs/ARCHITECTURE.md "Event store
 * contract"). src/Roles.ts runs the roles over PgStores.
 */
import { Layer } from "effect"
import { MemoryDatabase } from "./database/MemoryDatabase.js"
import { InlineProjections } from "./eventstore/InlineProjection.js"
import { MemoryEventStore } from "./eventstore/MemoryEventStore.js"
import { PgEventStore } from "./eventstore/PgEventStore.js"
import { IdempotencyCompletion } from "./idempotency/IdempotencyCompletion.js"
import { MemoryIdempotencyKeys, PgIdempotencyKeys } from "./idempotency/IdempotencyKeys.js"
import { InboxProjection, MemoryInbox, PgInbox } from "./inbox/Inbox.js"
import { MemoryOutbox, PgOutbox } from "./outbox/Outbox.js"
import { OutboxProjection } from "./outbox/OutboxProjection.js"
import { LocalOutboxSignal, PgOutboxSignal } from "./outbox/OutboxSignal.js"
import { MemoryOrdersReadModel, PgOrdersReadModel } from "./projection/OrdersReadModel.js"
import { OrdersProjection } from "./projection/OrdersTable.js"

/** What every append writes besides its events, in its transaction: the `orders` row, one outbox row per
 * event, the completed Idempotency-Key record, the inbox row. A new inline projection is added here. */
export const appendProjections = [OrdersProjection, OutboxProjection, IdempotencyCompletion, InboxProjection] as const
export const AppendProjections = InlineProjections.layer(...appendProjections)

/** EventStore, OrdersReadModel, IdempotencyKeys, Inbox, Outbox and the outbox wake-up over PostgreSQL (needs a PgClient). */
export const PgStores = Layer.mergeAll(
  PgEventStore.pipe(Layer.provide(AppendProjections)),
  PgOrdersReadModel,
  PgIdempotencyKeys,
  PgInbox,
  PgOutbox,
  PgOutboxSignal
)

/** The same services over one fresh in-memory database. */
export const MemoryStores = Layer.mergeAll(
  MemoryEventStore.pipe(Layer.provide(AppendProjections)),
  MemoryOrdersReadModel,
  MemoryIdempotencyKeys,
  MemoryInbox,
  MemoryOutbox,
  LocalOutboxSignal
).pipe(
  Layer.provideMerge(MemoryDatabase.layer)
)
