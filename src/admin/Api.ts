/**
 * The operator API (bearer token): the payment worker's dead letters, the projections, the reconciliation and
 * the webhook endpoints. 401 without a token, 403 with a wrong one; 404 no such dead letter, webhook endpoint or
 * delivery; 409 a dead letter that is not parked, or a rebuild while one runs; 422 a webhook registration refused.
 */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { DeadLetter } from "../deadletter/DeadLetter.js"
import { BadRequest, PayloadTooLarge, RequestTimeout, UnsupportedMediaType } from "../http/Errors.js"
import { type ErrorExample, errorExample } from "../http/ErrorExamples.js"
import { doc, NoParams, StorableText, strict } from "../http/Spec.js"
import { webhookEventTypes } from "../webhooks/EventTypes.js"

export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  message: Schema.String
}, HttpApiSchema.annotations({ status: 401 })) {}

export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", {
  message: Schema.String
}, HttpApiSchema.annotations({ status: 403 })) {}

export class DeadLetterNotFound extends Schema.TaggedError<DeadLetterNotFound>()("DeadLetterNotFound", {
  id: Schema.String,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 404 })) {}

export class DeadLetterNotParked extends Schema.TaggedError<DeadLetterNotParked>()("DeadLetterNotParked", {
  id: Schema.String,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 409 })) {}

export class RebuildAlreadyRunning extends Schema.TaggedError<RebuildAlreadyRunning>()("RebuildAlreadyRunning", {
  message: Schema.String
}, HttpApiSchema.annotations({ status: 409 })) {}

/** `Authorization: Bearer <ADMIN_TOKEN>`: 401 without a token, 403 with a wrong one. */
export class AdminAuth extends HttpApiMiddleware.Tag<AdminAuth>()("AdminAuth", {
  failure: Schema.Union(Unauthorized, Forbidden),
  security: { bearer: HttpApiSecurity.bearer }
}) {}

const DeadLetterPath = Schema.Struct({ id: Schema.NumberFromString.pipe(Schema.int(), Schema.positive()) })

export class DeadLettersApi extends HttpApiGroup.make("admin").annotateContext(OpenApi.annotations({ description: "Operator API for the dead letters of the payment worker (bearer token)." }))
  .add(
    HttpApiEndpoint.get("listDeadLetters", "/admin/dead-letters").annotateContext(doc("List dead letters", "Messages the payment worker parked, newest first, optionally by status."))
      .setUrlParams(strict(Schema.Struct({
        status: Schema.optional(Schema.Literal("parked", "replayed", "discarded")),
        limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 1000)))
      })))
      .addSuccess(Schema.Array(DeadLetter))
  )
  .add(
    HttpApiEndpoint.get("getDeadLetter", "/admin/dead-letters/:id").annotateContext(doc("Get a dead letter", "One parked message with its exact bytes, error and attempt count.")).setUrlParams(NoParams)
      .setPath(DeadLetterPath)
      .addSuccess(DeadLetter)
      .addError(DeadLetterNotFound)
  )
  .add(
    HttpApiEndpoint.post("replayDeadLetter", "/admin/dead-letters/:id/replay").annotateContext(doc("Replay a dead letter", "Puts a parked message back on the topic; 409 unless it is parked.")).setUrlParams(NoParams)
      .setPath(DeadLetterPath)
      .addSuccess(DeadLetter)
      .addError(DeadLetterNotFound)
      .addError(DeadLetterNotParked)
  )
  .add(
    HttpApiEndpoint.post("discardDeadLetter", "/admin/dead-letters/:id/discard").annotateContext(doc("Discard a dead letter", "Marks a parked message discarded; 409 unless it is parked.")).setUrlParams(NoParams)
      .setPath(DeadLetterPath)
      .addSuccess(DeadLetter)
      .addError(DeadLetterNotFound)
      .addError(DeadLetterNotParked)
  )
  .middleware(AdminAuth)
{}

export const RebuildStatus = Schema.Struct({
  running: Schema.Boolean,
  progress: Schema.NullOr(Schema.Struct({ done: Schema.Number, total: Schema.Number, eventsPerSecond: Schema.Number, etaSeconds: Schema.Number })),
  lastResult: Schema.NullOr(Schema.Struct({ events: Schema.Number, orders: Schema.Number, caughtUp: Schema.Number, seconds: Schema.Number })),
  lastError: Schema.NullOr(Schema.String)
})

export const ProjectionsStatus = Schema.Struct({
  orders: Schema.Struct({ rows: Schema.Number, events: Schema.Number, rebuild: RebuildStatus }),
  stats: Schema.Struct({ lagEvents: Schema.Number })
})

export class ProjectionsApi extends HttpApiGroup.make("adminProjections").annotateContext(OpenApi.annotations({ description: "Operator API for the projections (bearer token)." }))
  .add(
    HttpApiEndpoint.post("rebuildOrders", "/admin/projections/orders/rebuild").annotateContext(doc("Rebuild the orders projection", "Starts a rebuild of `orders` from the event log in the background (202); 409 while one runs.")).setUrlParams(NoParams)
      .addSuccess(RebuildStatus, { status: 202 })
      .addError(RebuildAlreadyRunning)
  )
  .add(HttpApiEndpoint.get("projectionsStatus", "/admin/projections").annotateContext(doc("Projections status", "Rows and events of `orders`, the rebuild's progress or last result, and the stats projection's lag.")).setUrlParams(NoParams).addSuccess(ProjectionsStatus))
  .middleware(AdminAuth)
{}

const MoneyRecordView = Schema.Struct({
  kind: Schema.Literal("charge", "refund"),
  key: Schema.String,
  orderId: Schema.String,
  amountMinor: Schema.String,
  currency: Schema.String,
  outcome: Schema.String,
  parked: Schema.optional(Schema.Boolean)
})

export const ReconciliationReport = Schema.Struct({
  since: Schema.String,
  until: Schema.String,
  checked: Schema.Struct({ ours: Schema.Number, theirs: Schema.Number }),
  differences: Schema.Array(Schema.Struct({
    kind: Schema.Literal("missing_on_our_side", "missing_on_their_side", "outcome_differs", "amount_differs", "refunds_exceed_charge"),
    record: Schema.Literal("charge", "refund", "order"),
    key: Schema.String,
    orderId: Schema.String,
    ours: Schema.NullOr(MoneyRecordView),
    theirs: Schema.NullOr(MoneyRecordView),
    message: Schema.String
  }))
})

/** A `since` query parameter: an ISO 8601 time PostgreSQL's timestamptz takes (1970 … 9999), else a 400. */
const SinceDate = Schema.DateFromString.pipe(
  Schema.validDate(),
  // what PostgreSQL's timestamptz takes, and no later than now could matter
  Schema.filter((d) => d.getTime() >= Date.UTC(1970, 0, 1) && d.getTime() <= Date.UTC(9999, 0, 1), {
    message: () => "since must be a time from 1970 on"
  })
)

export const ReconciliationParams = strict(Schema.Struct({
  since: Schema.optional(SinceDate.annotations({
    description: "the start of the window (ISO 8601); RECONCILE_WINDOW before now when omitted",
    examples: [new Date("2026-12-01T00:00:00Z")]
  }))
}))

export class ReconciliationApi extends HttpApiGroup.make("adminReconciliation").annotateContext(OpenApi.annotations({ description: "Operator API: the event log against the payment provider's ledger (bearer token)." }))
  .add(
    HttpApiEndpoint.get("reconcile", "/admin/reconciliation").annotateContext(doc("Reconcile with the provider", "Every charge and refund recorded in the window, matched by key against the provider's ledger: what the provider holds that the log lacks (`missing_on_our_side`), what the log holds that the provider lacks (`missing_on_their_side`), outcomes or amounts that differ, refunds above a charge. An empty `differences` is clean. 503 while the provider cannot be asked."))
      .setUrlParams(ReconciliationParams)
      .addSuccess(ReconciliationReport)
  )
  .middleware(AdminAuth)
{}

export class WebhookEndpointNotFound extends Schema.TaggedError<WebhookEndpointNotFound>()("WebhookEndpointNotFound", {
  id: Schema.String,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 404 })) {}

export class WebhookDeliveryNotFound extends Schema.TaggedError<WebhookDeliveryNotFound>()("WebhookDeliveryNotFound", {
  id: Schema.String,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 404 })) {}

/** Readable but refused: a URL that is not allowed, an unknown event type, a cursor this API did not give. */
export class WebhookRejected extends Schema.TaggedError<WebhookRejected>()("WebhookRejected", {
  message: Schema.String
}, HttpApiSchema.annotations({ status: 422 })) {}

/** A UUID in canonical lower case, as PostgreSQL's uuid prints it (anything else is a 400). */
const Uuid = Schema.compose(Schema.Lowercase, Schema.UUID, { strict: false })

/** Body of POST /admin/webhook-endpoints. Unknown fields are an error, not ignored. */
export const CreateWebhookEndpointBody = Schema.Struct({
  url: Schema.String.annotations({
    description: "where deliveries are POSTed: an https:// URL of a public host (WEBHOOK_ALLOW_PRIVATE_URLS also allows http:// and private addresses)",
    examples: ["https://merchant.example/webhooks/orders"]
  }),
  eventTypes: Schema.optional(
    Schema.Array(Schema.String.pipe(Schema.maxLength(100))).pipe(Schema.minItems(1), Schema.maxItems(100)).annotations({
      description: `the event types delivered (${webhookEventTypes.join(", ")}); every type when omitted`,
      examples: [["order.paid", "order.refund_succeeded"]]
    })
  ),
  description: Schema.optional(StorableText("description").pipe(Schema.maxLength(500)).annotations({ examples: ["fulfilment service"] }))
}).annotations({ parseOptions: { onExcessProperty: "error" } })
export type CreateWebhookEndpointBody = typeof CreateWebhookEndpointBody.Type

const Timestamp = Schema.String.annotations({ description: "ISO 8601", examples: ["2026-12-01T10:00:00.000Z"] })

export const WebhookEndpointView = Schema.Struct({
  id: Schema.String,
  url: Schema.String,
  eventTypes: Schema.NullOr(Schema.Array(Schema.String)).annotations({ description: "null: every event type" }),
  description: Schema.NullOr(Schema.String),
  status: Schema.Literal("enabled", "disabled"),
  disabledReason: Schema.NullOr(Schema.String),
  previousSecretUntil: Schema.NullOr(Timestamp).annotations({ description: "after a rotation, the previous secret signs beside the new one until then" }),
  failingSince: Schema.NullOr(Timestamp).annotations({ description: "the first failure of the current run of failed deliveries" }),
  createdAt: Timestamp,
  updatedAt: Timestamp
})

/** An endpoint with its signing secret: answered only when the secret is made (create, rotate). */
export const WebhookEndpointWithSecret = Schema.Struct({
  ...WebhookEndpointView.fields,
  secret: Schema.String.annotations({
    description: "the Standard Webhooks signing secret (`whsec_` + base64); shown once, never listed",
    examples: ["whsec_e0omMGZNKHtL6SM4XWSntjdvQ8kPEJ3Tm+PYuTHK1uQ="]
  })
})

export const WebhookDeliveryStatus = Schema.Literal("pending", "delivered", "failed")

export const WebhookDeliveryView = Schema.Struct({
  id: Schema.String,
  endpointId: Schema.String,
  eventId: Schema.String,
  orderId: Schema.String,
  version: Schema.Int,
  type: Schema.String,
  status: WebhookDeliveryStatus,
  attempts: Schema.Int,
  nextAttemptAt: Schema.NullOr(Timestamp),
  lastAttemptAt: Schema.NullOr(Timestamp),
  lastStatus: Schema.NullOr(Schema.Int).annotations({ description: "the HTTP status of the last attempt, null when it got none" }),
  lastError: Schema.NullOr(Schema.String),
  deliveredAt: Schema.NullOr(Timestamp),
  createdAt: Timestamp
})

export const WebhookDeliveryPage = Schema.Struct({
  deliveries: Schema.Array(WebhookDeliveryView),
  nextCursor: Schema.NullOr(Schema.String)
})

const WebhookEndpointPath = Schema.Struct({ id: Uuid })

export const WebhookDeliveriesParams = strict(Schema.Struct({
  status: Schema.optional(WebhookDeliveryStatus),
  limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 1000))),
  cursor: Schema.optional(Schema.String.pipe(Schema.maxLength(1000)).annotations({ description: "the `nextCursor` of the previous page" }))
}))

export const WebhookReplayParams = strict(Schema.Struct({
  since: SinceDate.annotations({
    description: "replay every delivered or failed delivery made since then (ISO 8601)",
    examples: [new Date("2026-12-01T00:00:00Z")]
  })
}))

export class WebhooksApi extends HttpApiGroup.make("adminWebhooks").annotateContext(OpenApi.annotations({ description: "Operator API for webhook endpoints and their deliveries (bearer token)." }))
  .add(
    HttpApiEndpoint.post("createWebhookEndpoint", "/admin/webhook-endpoints").annotateContext(doc("Register a webhook endpoint", "Registers a URL to be sent the order events of `eventTypes` (every type when omitted), signed per Standard Webhooks with a new secret, answered here once (201). A URL that is not allowed (not https://, a private, loopback, link-local or reserved address, credentials, longer than 2048 characters) or an unknown event type is a 422."))
      .setPayload(CreateWebhookEndpointBody)
      .setUrlParams(NoParams)
      .addSuccess(WebhookEndpointWithSecret, { status: 201 })
      .addError(BadRequest)
      .addError(WebhookRejected)
      .addError(PayloadTooLarge)
      .addError(UnsupportedMediaType)
      .addError(RequestTimeout)
  )
  .add(
    HttpApiEndpoint.get("listWebhookEndpoints", "/admin/webhook-endpoints").annotateContext(doc("List webhook endpoints", "Every registered endpoint, oldest first, without secrets.")).setUrlParams(NoParams)
      .addSuccess(Schema.Array(WebhookEndpointView))
  )
  .add(
    HttpApiEndpoint.get("getWebhookEndpoint", "/admin/webhook-endpoints/:id").annotateContext(doc("Get a webhook endpoint", "One endpoint, without its secret: status, why it was disabled, since when it fails.")).setUrlParams(NoParams)
      .setPath(WebhookEndpointPath)
      .addSuccess(WebhookEndpointView)
      .addError(WebhookEndpointNotFound)
  )
  .add(
    HttpApiEndpoint.post("disableWebhookEndpoint", "/admin/webhook-endpoints/:id/disable").annotateContext(doc("Disable a webhook endpoint", "Stops deliveries to the endpoint until it is enabled again.")).setUrlParams(NoParams)
      .setPath(WebhookEndpointPath)
      .addSuccess(WebhookEndpointView)
      .addError(WebhookEndpointNotFound)
  )
  .add(
    HttpApiEndpoint.post("enableWebhookEndpoint", "/admin/webhook-endpoints/:id/enable").annotateContext(doc("Enable a webhook endpoint", "Resumes deliveries to the endpoint, whoever disabled it; its run of failures starts again.")).setUrlParams(NoParams)
      .setPath(WebhookEndpointPath)
      .addSuccess(WebhookEndpointView)
      .addError(WebhookEndpointNotFound)
  )
  .add(
    HttpApiEndpoint.post("rotateWebhookSecret", "/admin/webhook-endpoints/:id/rotate-secret").annotateContext(doc("Rotate a webhook endpoint's secret", "Makes a new signing secret, answered here once; the previous one keeps signing beside it for 24 hours (`previousSecretUntil`) so the receiver can switch.")).setUrlParams(NoParams)
      .setPath(WebhookEndpointPath)
      .addSuccess(WebhookEndpointWithSecret)
      .addError(WebhookEndpointNotFound)
  )
  .add(
    HttpApiEndpoint.get("listWebhookDeliveries", "/admin/webhook-endpoints/:id/deliveries").annotateContext(doc("List an endpoint's deliveries", "The endpoint's deliveries newest first, optionally by status, paged with the opaque `nextCursor` of the previous page; a cursor this API did not give is a 422."))
      .setPath(WebhookEndpointPath)
      .setUrlParams(WebhookDeliveriesParams)
      .addSuccess(WebhookDeliveryPage)
      .addError(WebhookEndpointNotFound)
      .addError(WebhookRejected)
  )
  .add(
    HttpApiEndpoint.post("replayWebhookDeliveries", "/admin/webhook-endpoints/:id/replay").annotateContext(doc("Replay an endpoint's deliveries since a time", "Puts every delivered or failed delivery of the endpoint made since `since` back in line (pending, attempts from 0); answers how many."))
      .setPath(WebhookEndpointPath)
      .setUrlParams(WebhookReplayParams)
      .addSuccess(Schema.Struct({ replayed: Schema.Int }))
      .addError(WebhookEndpointNotFound)
  )
  .add(
    HttpApiEndpoint.post("replayWebhookDelivery", "/admin/webhook-deliveries/:id/replay").annotateContext(doc("Replay a webhook delivery", "Puts one delivery back in line, whatever its status: pending, attempts from 0, due now.")).setUrlParams(NoParams)
      .setPath(Schema.Struct({ id: Uuid }))
      .addSuccess(WebhookDeliveryView)
      .addError(WebhookDeliveryNotFound)
  )
  .middleware(AdminAuth)
{}

export const adminErrorExamples: ReadonlyArray<ErrorExample> = [
  errorExample(Unauthorized, new Unauthorized({ message: "an admin bearer token is required" }), "no bearer token"),
  errorExample(Forbidden, new Forbidden({ message: "this token may not use the admin API" }), "a wrong bearer token"),
  errorExample(DeadLetterNotFound, new DeadLetterNotFound({ id: "42", message: "dead letter 42 not found" }), "no such dead letter"),
  errorExample(DeadLetterNotParked, new DeadLetterNotParked({ id: "42", message: "dead letter 42 is replayed" }), "the dead letter was replayed or discarded already"),
  errorExample(RebuildAlreadyRunning, new RebuildAlreadyRunning({ message: "a rebuild of orders is already running" }), "a rebuild runs"),
  errorExample(WebhookEndpointNotFound, new WebhookEndpointNotFound({
    id: "0196b3f0-6a5c-7c3e-8f21-4d5e6f708194",
    message: "webhook endpoint 0196b3f0-6a5c-7c3e-8f21-4d5e6f708194 not found"
  }), "no such webhook endpoint"),
  errorExample(WebhookDeliveryNotFound, new WebhookDeliveryNotFound({
    id: "0196b3f0-6a5c-7c3e-8f21-4d5e6f708195",
    message: "webhook delivery 0196b3f0-6a5c-7c3e-8f21-4d5e6f708195 not found"
  }), "no such webhook delivery"),
  errorExample(WebhookRejected, new WebhookRejected({ message: "url: 10.0.0.1 is a private, loopback, link-local or reserved address" }), "a URL that is not allowed, an unknown event type, a cursor this API did not give")
]
