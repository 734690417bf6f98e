/**
 * The operator API (bearer token): the payment worker's dead letters and the projections. 401 without a
 * token, 403 with a wrong one; 404 no such dead letter; 409 a dead letter that is not parked, or a rebuild
 * while one runs.
 */
import { HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, HttpApiSchema, HttpApiSecurity, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { DeadLetter } from "../deadletter/DeadLetter.js"
import { type ErrorExample, errorExample } from "../http/ErrorExamples.js"
import { doc, NoParams, strict } from "../http/Spec.js"

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

export const ReconciliationParams = strict(Schema.Struct({
  since: Schema.optional(Schema.DateFromString.pipe(
    Schema.validDate(),
    // what PostgreSQL's timestamptz takes, and no later than now could matter
    Schema.filter((d) => d.getTime() >= Date.UTC(1970, 0, 1) && d.getTime() <= Date.UTC(9999, 0, 1), {
      message: () => "since must be a time from 1970 on"
    })
  ).annotations({
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

export const adminErrorExamples: ReadonlyArray<ErrorExample> = [
  errorExample(Unauthorized, new Unauthorized({ message: "an admin bearer token is required" }), "no bearer token"),
  errorExample(Forbidden, new Forbidden({ message: "this token may not use the admin API" }), "a wrong bearer token"),
  errorExample(DeadLetterNotFound, new DeadLetterNotFound({ id: "42", message: "dead letter 42 not found" }), "no such dead letter"),
  errorExample(DeadLetterNotParked, new DeadLetterNotParked({ id: "42", message: "dead letter 42 is replayed" }), "the dead letter was replayed or discarded already"),
  errorExample(RebuildAlreadyRunning, new RebuildAlreadyRunning({ message: "a rebuild of orders is already running" }), "a rebuild runs")
]
