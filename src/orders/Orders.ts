/**
 * Reading and cancelling orders for the API: the order from the `orders` projection (or folded from its
 * stream as of a version, for audits), pages of orders newest first behind an opaque cursor, the stream's
 * events, and cancel through the order's actor (the one way to change an order).
 */
import { Effect, Option, Schema } from "effect"
import { OrderActors } from "../actor/OrderActors.js"
import { fold } from "../domain/OrderDecider.js"
import { CancelOrder, type OrderId, OrderNotFound, type OrderStatus, type UserId } from "../domain/Order.js"
import { EventStore } from "../eventstore/EventStore.js"
import { BadRequest } from "../http/Errors.js"
import { uuidv4 } from "../Ids.js"
import { OrdersReadModel } from "../projection/OrdersReadModel.js"
import { type OrderPage, OrderVersionNotFound } from "./Api.js"
import { orderBusy } from "./PlaceOrder.js"
import { toEventView, toView } from "./Views.js"

export interface ListRequest {
  readonly state?: OrderStatus | undefined
  readonly userId?: UserId | undefined
  readonly limit?: number | undefined
  readonly cursor?: string | undefined
}

const encodeCursor = (orderId: string) => Buffer.from(orderId).toString("base64url")
const decodeCursor = (cursor: string) => Schema.decodeUnknownOption(Schema.UUID)(Buffer.from(cursor, "base64url").toString())

const notFound = (orderId: OrderId) => new OrderNotFound({ orderId, message: `order ${orderId} not found` })

export class Orders extends Effect.Service<Orders>()("Orders", {
  effect: Effect.gen(function*() {
    const actors = yield* OrderActors
    const readModel = yield* OrdersReadModel
    const store = yield* EventStore

    /** The order as of version `n`, folded from its stream (not the projection). */
    const atVersion = (orderId: OrderId, n: number) =>
      Effect.gen(function*() {
        const recorded = yield* store.readStream(orderId)
        if (recorded.length === 0) return yield* notFound(orderId)
        const current = recorded[recorded.length - 1]!.version
        if (n > current) {
          return yield* new OrderVersionNotFound({
            orderId,
            version: n,
            currentVersion: current,
            message: `order ${orderId} is at version ${current}; it has no version ${n} yet`
          })
        }
        return toView(fold(recorded.filter((r) => r.version <= n).map((r) => r.event))!)
      })

    return {
      get: (orderId: OrderId, version: number | undefined) =>
        version !== undefined
          ? atVersion(orderId, version)
          : Effect.flatMap(readModel.get(orderId), Option.match({
            onNone: () => Effect.fail(notFound(orderId)),
            onSome: (order) => Effect.succeed(toView(order))
          })),

      list: (request: ListRequest) =>
        Effect.gen(function*() {
          const limit = request.limit ?? 20
          let before: OrderId | undefined
          if (request.cursor !== undefined) {
            const decoded = decodeCursor(request.cursor)
            if (Option.isNone(decoded)) return yield* new BadRequest({ message: "cursor is not one this API returned" })
            before = decoded.value as OrderId
          }
          const rows = yield* readModel.list({ status: request.state, userId: request.userId, before, limit: limit + 1 })
          const items = rows.slice(0, limit)
          return {
            items: items.map(toView),
            nextCursor: rows.length > limit ? encodeCursor(items[items.length - 1]!.orderId) : null
          } satisfies OrderPage
        }),

      events: (orderId: OrderId) =>
        store.readStream(orderId).pipe(
          Effect.filterOrFail((events) => events.length > 0, () => notFound(orderId)),
          Effect.map((events) => events.map(toEventView))
        ),

      cancel: (orderId: OrderId, correlationId: string) => {
        const command = new CancelOrder({
          commandId: uuidv4() as CancelOrder["commandId"],
          orderId,
          reason: "cancelled by the client",
          at: new Date()
        })
        return actors.execute(command, { metadata: { correlationId, causationId: command.commandId } }).pipe(
          Effect.map(({ order }) => toView(order)),
          Effect.catchTags({
            ConcurrencyConflict: (e) => Effect.fail(orderBusy(e)),
            OrderAlreadyExists: Effect.die
          })
        )
      }
    } as const
  })
}) {}
