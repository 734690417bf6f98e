/**
 * The orders endpoints: thin handlers over PlaceOrder, Orders and OrderWatchers. POST /orders reads its own
 * body (src/http/JsonBody.ts) so that every bad request gets its proper 4xx (the generic payload decoder turns
 * unreadable JSON into a 500) and nothing is written for it.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Layer, ParseResult, Schema } from "effect"
import { Api } from "../http/Api.js"
import type { OrderId } from "../domain/Order.js"
import { BadRequest } from "../http/Errors.js"
import { answerStoreErrors, requestCorrelationId } from "../http/Failures.js"
import { answerLateBody, BodyLimitsConfig, readJsonBody } from "../http/JsonBody.js"
import { deadlinePassed, RequestTimeoutMs, withinDeadline } from "../http/RequestDeadline.js"
import { decodePlaceOrderBodyFast, PlaceOrderBody, RefundBody } from "./Api.js"
import { Orders } from "./Orders.js"
import { OrderWatchers, OrderWatchersLive } from "./OrderWatch.js"
import { PlaceOrder, PlaceOrderLive } from "./PlaceOrder.js"

const decodePlaceOrder = Schema.decodeUnknown(PlaceOrderBody, { errors: "all", onExcessProperty: "error" })
const decodeRefund = Schema.decodeUnknown(RefundBody, { errors: "all", onExcessProperty: "error" })

const replayedHeaders = { "idempotent-replayed": "true" }

export const OrdersHttpLive = HttpApiBuilder.group(Api, "orders", (handlers) =>
    Effect.gen(function*() {
      const placeOrder = yield* PlaceOrder
      const orders = yield* Orders
      const watchers = yield* OrderWatchers
      const limits = yield* Effect.orDie(BodyLimitsConfig)
      // a refund and a cancel make several statements each (the order, its stream, the append): bounded as a
      // whole, as POST /orders is in PlaceOrder (src/http/RequestDeadline.ts)
      const requestTimeoutMs = yield* Effect.orDie(RequestTimeoutMs)
      const timedOut = () => deadlinePassed(requestTimeoutMs)
      const bounded = <A, E, R>(work: Effect.Effect<A, E, R>) => withinDeadline(work, requestTimeoutMs, timedOut)
      const place = Effect.fnUntraced(function*(request: HttpServerRequest.HttpServerRequest, idempotencyKey: string | undefined) {
        const json = yield* readJsonBody(request, limits)
        const body = decodePlaceOrderBodyFast(json) ?? (yield* decodePlaceOrder(json).pipe(
          Effect.mapError((e) => new BadRequest({ message: ParseResult.TreeFormatter.formatErrorSync(e) }))
        ))
        const placed = yield* placeOrder.place({ body, idempotencyKey, correlationId: yield* requestCorrelationId(request) })
        return placed.replayed
          ? HttpServerResponse.unsafeJson(placed.body, { status: placed.status, headers: replayedHeaders })
          : HttpServerResponse.unsafeJson(placed.body, { status: placed.status })
      })

      const refund = Effect.fnUntraced(function*(request: HttpServerRequest.HttpServerRequest, orderId: OrderId, idempotencyKey: string | undefined) {
        const json = yield* readJsonBody(request, limits)
        const body = yield* decodeRefund(json).pipe(
          Effect.mapError((e) => new BadRequest({ message: ParseResult.TreeFormatter.formatErrorSync(e) }))
        )
        const accepted = yield* bounded(orders.refund({ orderId, body, idempotencyKey, correlationId: yield* requestCorrelationId(request) }))
        return accepted.replayed
          ? HttpServerResponse.unsafeJson(accepted.view, { status: 202, headers: replayedHeaders })
          : HttpServerResponse.unsafeJson(accepted.view, { status: 202 })
      })
      return handlers
        .handleRaw("place", ({ headers, request }) => place(request, headers["idempotency-key"]).pipe(answerLateBody, answerStoreErrors))
        .handleRaw("refund", ({ headers, path, request }) =>
          refund(request, path.orderId, headers["idempotency-key"]).pipe(answerLateBody, answerStoreErrors))
        .handle("refunds", ({ path }) => answerStoreErrors(orders.refunds(path.orderId)))
        .handle("getRefund", ({ path }) => answerStoreErrors(orders.getRefund(path.orderId, path.refundId)))
        .handle("get", ({ path, urlParams }) => answerStoreErrors(orders.get(path.orderId, urlParams.atVersion)))
        .handleRaw("watch", ({ headers, path }) =>
          Effect.map(watchers.watch(path.orderId, headers["last-event-id"] ?? 0), (stream) =>
            HttpServerResponse.stream(stream, {
              contentType: "text/event-stream",
              headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
            })).pipe(answerStoreErrors))
        .handle("list", ({ urlParams }) => answerStoreErrors(orders.list(urlParams)))
        .handle("events", ({ path }) => answerStoreErrors(orders.events(path.orderId)))
        .handle("cancel", ({ path, request }) =>
          Effect.flatMap(requestCorrelationId(request), (correlationId) => bounded(orders.cancel(path.orderId, correlationId))).pipe(
            answerStoreErrors
          ))
    })).pipe(
    Layer.provide([PlaceOrderLive, Orders.Default, OrderWatchersLive])
  )
