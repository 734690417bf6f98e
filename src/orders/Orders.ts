/**
 * Reading and cancelling orders for the API: the order from the `orders` projection (or folded from its
 * stream as of a version, for audits), pages of orders newest first behind an opaque cursor, the stream's
 * events, and cancel through the order's actor (the one way to change an order).
 */
import { Either, Effect, Option, Schema } from "effect"
import { OrderActors } from "../actor/OrderActors.js"
import { fold } from "../domain/OrderDecider.js"
import { parseMoney } from "../domain/Money.js"
import {
  CancelOrder,
  type Order,
  type OrderId,
  OrderNotFound,
  type OrderStatus,
  type RefundId,
  RequestRefund,
  type UserId
} from "../domain/Order.js"
import { EventStore } from "../eventstore/EventStore.js"
import { BadRequest } from "../http/Errors.js"
import { deriveId, uuidv4 } from "../Ids.js"
import { OrdersReadModel } from "../projection/OrdersReadModel.js"
import { IdempotencyKeyMismatch, type OrderPage, OrderVersionNotFound, type RefundBody, RefundNotFound, type RefundView } from "./Api.js"
import { orderBusy } from "./PlaceOrder.js"
import { acceptedRefundView, toEventView, toRefundView, toView } from "./Views.js"

export interface ListRequest {
  readonly state?: OrderStatus | undefined
  readonly userId?: UserId | undefined
  readonly limit?: number | undefined
  readonly cursor?: string | undefined
}

const encodeCursor = (orderId: string) => Buffer.from(orderId).toString("base64url")
const decodeCursor = (cursor: string) => Schema.decodeUnknownOption(Schema.UUID)(Buffer.from(cursor, "base64url").toString())

const notFound = (orderId: OrderId) => new OrderNotFound({ orderId, message: `order ${orderId} not found` })

export interface RefundRequest {
  readonly orderId: OrderId
  readonly body: RefundBody
  readonly idempotencyKey: string | undefined
  readonly correlationId: string
}

/** An accepted refund request's answer; `replayed`: the refund id (its Idempotency-Key) was asked for already. */
export interface RefundAccepted {
  readonly view: RefundView
  readonly replayed: boolean
}

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

    /** The order from the projection, or OrderNotFound. */
    const current = (orderId: OrderId) =>
      Effect.flatMap(readModel.get(orderId), Option.match({
        onNone: () => Effect.fail(notFound(orderId)),
        onSome: (order): Effect.Effect<Order> => Effect.succeed(order)
      }))

    return {
      get: (orderId: OrderId, version: number | undefined) =>
        version !== undefined ? atVersion(orderId, version) : Effect.map(current(orderId), toView),

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

      /**
       * Ask for a refund through the order's actor. The refund id is derived from the order and the
       * Idempotency-Key (a random one without a key): the same key and body again is the same command, which the
       * decider finds satisfied already — the first answer is given again; another body is refused there.
       */
      refund: ({ body, correlationId, idempotencyKey, orderId }: RefundRequest) =>
        Effect.gen(function*() {
          const order = yield* current(orderId)
          const amount = parseMoney(body.amount, body.currency ?? order.amount.currency)
          if (Either.isLeft(amount)) return yield* amount.left
          const command = new RequestRefund({
            commandId: (idempotencyKey === undefined ? uuidv4() : deriveId(orderId, `refund-command/${idempotencyKey}`)) as RequestRefund["commandId"],
            orderId,
            refundId: (idempotencyKey === undefined ? uuidv4() : deriveId(orderId, `refund/${idempotencyKey}`)) as RefundId,
            amount: amount.right,
            reason: body.reason ?? null,
            at: new Date()
          })
          const executed = yield* actors.execute(command, { metadata: { correlationId, causationId: command.commandId } }).pipe(
            Effect.catchTags({
              ConcurrencyConflict: (e) => Effect.fail(orderBusy(e)),
              OrderAlreadyExists: Effect.die,
              RefundRefused: (e) =>
                e.code === "refund_id"
                  ? Effect.fail(new IdempotencyKeyMismatch({ message: "this Idempotency-Key was used with a different request" }))
                  : Effect.fail(e)
            })
          )
          const refund = executed.order.refunds.find((r) => r.refundId === command.refundId)!
          return { view: acceptedRefundView(executed.order, refund), replayed: executed.events.length === 0 } satisfies RefundAccepted
        }),

      refunds: (orderId: OrderId) =>
        Effect.map(current(orderId), (order) => ({ items: order.refunds.map((r) => toRefundView(order, r)) })),

      getRefund: (orderId: OrderId, refundId: RefundId) =>
        Effect.flatMap(current(orderId), (order) => {
          const refund = order.refunds.find((r) => r.refundId === refundId)
          return refund === undefined
            ? Effect.fail(new RefundNotFound({ orderId, refundId, message: `order has no refund ${refundId}` }))
            : Effect.succeed(toRefundView(order, refund))
        }),

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
            OrderAlreadyExists: Effect.die,
            RefundRefused: Effect.die
          })
        )
      }
    } as const
  })
}) {}
