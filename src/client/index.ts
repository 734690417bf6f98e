/**
 * The typed client of the HTTP API (package entry point `orders-es/client`), derived by HttpApiClient from the
 * same HttpApi definition the server implements (src/http/Api.ts): one method per endpoint, grouped as the API
 * groups them (`orders`, `admin`, `adminProjections`, `adminReconciliation`, `adminWebhooks`, `health`, `stats`,
 * `metrics`), each failing with the errors its endpoint declares, decoded by status and `_tag`. It imports the
 * definition only, no database or broker code: scripts/client-imports.mjs checks the built module.
 */
import type * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiClient from "@effect/platform/HttpApiClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Context, Effect, Layer, type Redacted } from "effect"
import { Api } from "../http/Api.js"

export interface OrdersClientOptions {
  /** Where the api role listens, e.g. `http://127.0.0.1:3000`. */
  readonly baseUrl: string | URL
  /** The server's ADMIN_TOKEN: sent as `Authorization: Bearer` to the admin endpoints, and only to them. */
  readonly adminToken?: string | Redacted.Redacted<string> | undefined
}

type Groups<A> = A extends HttpApi.HttpApi<infer _Id, infer G, infer _E, infer _R> ? G : never
type Errors<A> = A extends HttpApi.HttpApi<infer _Id, infer _G, infer E, infer _R> ? E : never

/**
 * The client's methods, `client.orders.place(...)`, `client.admin.listDeadLetters(...)`, ...: each fails with
 * its endpoint's declared errors, the API-wide 503/500, `HttpClientError` (no response) and `ParseError` (a
 * response that does not match the spec).
 */
export interface Client extends HttpApiClient.Client<Groups<typeof Api>, Errors<typeof Api>, never> {}

const make = (options: OrdersClientOptions): Effect.Effect<Client, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const { baseUrl } = options
    const client = yield* HttpApiClient.make(Api, { baseUrl })
    if (options.adminToken === undefined) return client
    const httpClient = (yield* HttpClient.HttpClient).pipe(
      HttpClient.mapRequest(HttpClientRequest.bearerToken(options.adminToken))
    )
    return {
      ...client,
      admin: yield* HttpApiClient.group(Api, { group: "admin", httpClient, baseUrl }),
      adminProjections: yield* HttpApiClient.group(Api, { group: "adminProjections", httpClient, baseUrl }),
      adminReconciliation: yield* HttpApiClient.group(Api, { group: "adminReconciliation", httpClient, baseUrl }),
      adminWebhooks: yield* HttpApiClient.group(Api, { group: "adminWebhooks", httpClient, baseUrl })
    }
  })

/**
 * The client as a service. `OrdersClient.make(options)` builds one, `OrdersClient.layer(options)` provides
 * one; both need an `HttpClient` (e.g. `FetchHttpClient.layer` from @effect/platform).
 */
export class OrdersClient extends Context.Tag("orders-es/OrdersClient")<OrdersClient, Client>() {
  static readonly make = make
  static readonly layer = (options: OrdersClientOptions): Layer.Layer<OrdersClient, never, HttpClient.HttpClient> =>
    Layer.effect(OrdersClient, make(options))
}

export { Api }
export {
  Forbidden,
  Unauthorized,
  DeadLetterNotFound,
  DeadLetterNotParked,
  RebuildAlreadyRunning,
  WebhookDeliveryNotFound,
  WebhookEndpointNotFound,
  WebhookRejected
} from "../admin/Api.js"
export { InvalidAmount } from "../domain/Money.js"
export { IllegalTransition, OrderAlreadyExists, OrderId, OrderNotFound, OrderStatus, UserId } from "../domain/Order.js"
export { BadRequest, InternalError, PayloadTooLarge, RequestTimeout, ServiceUnavailable, UnsupportedMediaType } from "../http/Errors.js"
export { NotReady } from "../ops/Api.js"
export {
  IdempotencyKeyInUse,
  IdempotencyKeyMismatch,
  OrderBusy,
  OrderVersionNotFound,
  type OrderPage,
  type OrderView,
  type EventView,
  type PlaceOrderBody,
  TooManyWatchers
} from "../orders/Api.js"
export type { DeadLetter } from "../deadletter/DeadLetter.js"
