/**
 * Layers, composed once: the PostgreSQL and in-memory stores (swap one layer to change backends), the order
 * actors over them, and the HTTP server. main.ts and the tests build the program from these.
 */
import { HttpServer } from "@effect/platform"
import { Layer } from "effect"
import { OrderActors } from "./actor/OrderActors.js"
import { MemoryDatabase } from "./eventstore/MemoryDatabase.js"
import { MemoryEventStore } from "./eventstore/MemoryEventStore.js"
import { PgEventStore } from "./eventstore/PgEventStore.js"
import { MemoryIdempotencyKeys, PgIdempotencyKeys } from "./idempotency/IdempotencyKeys.js"
import { MemoryInbox, PgInbox } from "./inbox/Inbox.js"
import { MemoryOutbox, PgOutbox } from "./outbox/Outbox.js"
import { LocalOutboxSignal, PgOutboxSignal } from "./outbox/OutboxSignal.js"
import { MemoryOrdersReadModel, PgOrdersReadModel } from "./projection/OrdersProjection.js"

/** EventStore, OrdersReadModel, IdempotencyKeys, Inbox, Outbox and the outbox wake-up over PostgreSQL (needs a PgClient). */
export const PgStores = Layer.mergeAll(PgEventStore, PgOrdersReadModel, PgIdempotencyKeys, PgInbox, PgOutbox, PgOutboxSignal)

/** The same services over one fresh in-memory database. */
export const MemoryStores = Layer.mergeAll(
  MemoryEventStore,
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
