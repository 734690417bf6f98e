/**
 * The webhook endpoints of the admin API: thin handlers over WebhookEndpoints (src/webhooks/Endpoints.ts).
 * POST /admin/webhook-endpoints reads its own body (src/http/JsonBody.ts), as POST /orders does, so that any
 * bytes a client sends get their 4xx; a secret is answered only by create and rotate-secret.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Option, ParseResult, Schema } from "effect"
import { Api } from "../http/Api.js"
import { BadRequest } from "../http/Errors.js"
import { answerStoreErrors } from "../http/Failures.js"
import { answerLateBody, BodyLimitsConfig, readJsonBody } from "../http/JsonBody.js"
import type { StoreError } from "../Infrastructure.js"
import { WebhookEndpoints, type WebhookRejected as Refused } from "../webhooks/Endpoints.js"
import { CreateWebhookEndpointBody, WebhookDeliveryNotFound, WebhookEndpointNotFound, WebhookRejected } from "./Api.js"

const decodeCreate = Schema.decodeUnknown(CreateWebhookEndpointBody, { errors: "all", onExcessProperty: "error" })

/** The service's refusal as the API's 422. */
const rejected = <A, R>(self: Effect.Effect<A, Refused | StoreError, R>) =>
  Effect.catchTag(self, "WebhookRejected", (e) => Effect.fail(new WebhookRejected({ message: e.message })))

const endpointNotFound = (id: string) => new WebhookEndpointNotFound({ id, message: `webhook endpoint ${id} not found` })

/** Some(a) → a; None → 404. */
const orNotFound = <E>(notFound: () => E) => <A, E2, R>(self: Effect.Effect<Option.Option<A>, E2, R>) =>
  Effect.flatMap(self, Option.match({ onNone: () => Effect.fail(notFound()), onSome: Effect.succeed }))

export const WebhooksHttpLive = HttpApiBuilder.group(Api, "adminWebhooks", (handlers) =>
  Effect.gen(function*() {
    const endpoints = yield* WebhookEndpoints
    const limits = yield* Effect.orDie(BodyLimitsConfig)

    const create = Effect.fn("WebhooksHttp.create")(function*(request: HttpServerRequest.HttpServerRequest) {
      const json = yield* readJsonBody(request, limits)
      const body = yield* decodeCreate(json).pipe(
        Effect.mapError((e) => new BadRequest({ message: ParseResult.TreeFormatter.formatErrorSync(e) }))
      )
      const { endpoint, secret } = yield* rejected(endpoints.create(body))
      return HttpServerResponse.unsafeJson({ ...endpoint, secret }, { status: 201 })
    })

    return handlers
      .handleRaw("createWebhookEndpoint", ({ request }) => create(request).pipe(answerLateBody, answerStoreErrors))
      .handle("listWebhookEndpoints", () => answerStoreErrors(endpoints.list))
      .handle("getWebhookEndpoint", ({ path }) =>
        endpoints.get(path.id).pipe(orNotFound(() => endpointNotFound(path.id)), answerStoreErrors))
      .handle("disableWebhookEndpoint", ({ path }) =>
        endpoints.setEnabled(path.id, false).pipe(orNotFound(() => endpointNotFound(path.id)), answerStoreErrors))
      .handle("enableWebhookEndpoint", ({ path }) =>
        endpoints.setEnabled(path.id, true).pipe(orNotFound(() => endpointNotFound(path.id)), answerStoreErrors))
      .handle("rotateWebhookSecret", ({ path }) =>
        endpoints.rotateSecret(path.id).pipe(
          orNotFound(() => endpointNotFound(path.id)),
          Effect.map(({ endpoint, secret }) => ({ ...endpoint, secret })),
          answerStoreErrors
        ))
      .handle("listWebhookDeliveries", ({ path, urlParams }) =>
        rejected(endpoints.deliveries(path.id, urlParams)).pipe(orNotFound(() => endpointNotFound(path.id)), answerStoreErrors))
      .handle("replayWebhookDeliveries", ({ path, urlParams }) =>
        endpoints.replaySince(path.id, urlParams.since).pipe(
          orNotFound(() => endpointNotFound(path.id)),
          Effect.map((replayed) => ({ replayed })),
          answerStoreErrors
        ))
      .handle("replayWebhookDelivery", ({ path }) =>
        endpoints.replay(path.id).pipe(
          orNotFound(() => new WebhookDeliveryNotFound({ id: path.id, message: `webhook delivery ${path.id} not found` })),
          answerStoreErrors
        ))
  }))
