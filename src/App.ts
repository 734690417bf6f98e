/**
 * Layers, composed once: the PostgreSQL and in-memory stores (swap one layer to change backends), the order
 * actors over them, and the HTTP server. main.ts and the tests build the program from these.
 */
import { HttpServer } from "@effect/platform"
import { Layer } from "effect"
import { OrderActors } from "./actor/OrderActors.js"
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

/** The order actors over whichever stores are provided. */
export const Domain = OrderActors.Default

export { HttpLive, httpClientErrors, measureLatency, type ServerOptions } from "./http/Server.js"
export { HttpServer }
