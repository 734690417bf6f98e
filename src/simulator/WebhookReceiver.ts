/**
 * The webhook receiver simulator: a real HTTP service (role `webhook-receiver`) standing for merchants' webhook
 * endpoints, with its own record of every request it was sent (table webhook_receipts: tests, the benchmark and
 * the fault-injection suite read deliveries back there). It verifies signatures as a merchant would, with the
 * Standard Webhooks reference library over the raw body, so our signing is checked by code that is not ours.
 *   POST   /hooks/:name   a delivery to endpoint `name` ([A-Za-z0-9_-]{1,64}, else 404), recorded and answered by
 *                         its settings: hang → never (recorded answered null); gone → 410; a signature none of
 *                         its secrets verifies → 400; failRate → 500; else `status`; each after latencyMs, with
 *                         Retry-After on a non-2xx answer when retryAfterSeconds is set. Valid: any secret
 *                         verifies; null (unknown) while it has none
 *   GET    /hooks/:name/received?after=<id>&limit=<n ≤ 10000>   its receipts, ascending id
 *   DELETE /hooks/:name/received   forgets its receipts
 *   GET|PUT /control/:name   {status, latencyMs, failRate, hang, gone, retryAfterSeconds, secrets}: the endpoint's
 *                            behaviour, changeable live (PUT merges and answers the whole; a bad body → 400)
 * RECEIVER_ENDPOINTS (JSON `{"<name>": {…settings}}`) gives endpoints their settings at startup, as a merchant's
 * endpoint keeps its secret across its own restarts: a receiver killed and started again verifies at once.
 * It stands for an external system: only the role wiring (src/Roles.ts) and the tests import it; nothing
 * else reads its table.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { NodeHttpServer } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { Config, ConfigError, Context, Effect, Either, Layer, Ref, Schema } from "effect"
import { createServer } from "node:http"
import { Webhook } from "standardwebhooks"
import { listenPort } from "../Config.js"

/** A secret the library accepts: `whsec_` and base64. */
const Secret = Schema.String.pipe(
  Schema.filter((s) => Either.isRight(Either.try(() => new Webhook(s))), { message: () => "not a whsec_<base64> secret" })
)

export const ReceiverSettings = Schema.Struct({
  status: Schema.Int.pipe(Schema.between(200, 599)),
  latencyMs: Schema.Number.pipe(Schema.between(0, 120_000)),
  failRate: Schema.Number.pipe(Schema.between(0, 1)),
  hang: Schema.Boolean,
  gone: Schema.Boolean,
  retryAfterSeconds: Schema.NullOr(Schema.Int.pipe(Schema.nonNegative())),
  secrets: Schema.Array(Secret)
})
export type ReceiverSettings = typeof ReceiverSettings.Type

const defaults: ReceiverSettings = {
  status: 200, latencyMs: 0, failRate: 0, hang: false, gone: false, retryAfterSeconds: null, secrets: []
}

/** Settings given at startup, per endpoint name (each merged over the defaults). */
const StartupEndpoints = Schema.parseJson(Schema.Record({
  key: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_-]{1,64}$/)),
  value: Schema.partialWith(ReceiverSettings, { exact: true })
}))

export const ReceiverConfig = Config.all({
  port: listenPort("RECEIVER_PORT", 3200),
  host: Config.string("RECEIVER_HOST").pipe(Config.withDefault("127.0.0.1")),
  endpoints: Config.string("RECEIVER_ENDPOINTS").pipe(
    Config.withDefault("{}"),
    Config.mapOrFail((text) =>
      Either.mapLeft(
        Schema.decodeUnknownEither(StartupEndpoints, { onExcessProperty: "error" })(text),
        (e) => ConfigError.InvalidData([], `RECEIVER_ENDPOINTS: ${e.message}`)
      )
    ),
    Config.map((byName): ReadonlyMap<string, ReceiverSettings> =>
      new Map(Object.entries(byName).map(([name, settings]) => [name, { ...defaults, ...settings }]))
    )
  )
})

const endpointName = /^[A-Za-z0-9_-]{1,64}$/

const ReceivedQuery = Schema.Struct({
  after: Schema.optionalWith(Schema.NumberFromString.pipe(Schema.int(), Schema.nonNegative()), { default: () => 0 }),
  limit: Schema.optionalWith(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 10_000)), { default: () => 1000 })
})

const field = (value: unknown, key: string): unknown =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined
const text = (value: unknown) => typeof value === "string" ? value : null

/** What a body of ours says (`{type, timestamp, data: {order: {orderId, …}, eventId, version}}`, the order as the API
 * shows it); nulls where it says otherwise. */
const delivered = (body: string) => {
  const json = Either.getOrNull(Either.try(() => JSON.parse(body) as unknown))
  const data = field(json, "data")
  const version = field(data, "version")
  const at = Date.parse(text(field(json, "timestamp")) ?? "")
  const timestamp = Number.isNaN(at) ? null : new Date(at).toISOString()
  return {
    type: text(field(json, "type")),
    orderId: text(field(field(data, "order"), "orderId")),
    version: Number.isInteger(version) && Math.abs(version as number) < 2 ** 31 ? version as number : null,
    eventId: text(field(data, "eventId")),
    // a year Date accepts and PostgreSQL does not (±275760) is no timestamp of ours
    timestamp: timestamp !== null && /^\d{4}-/.test(timestamp) ? timestamp : null
  }
}

/** Valid when any secret verifies the raw body under the request's headers; null with no secret to try. */
const verify = (secrets: ReadonlyArray<string>, body: string, headers: Readonly<Record<string, string>>) => {
  if (secrets.length === 0) return { valid: null, error: null }
  const errors = new Set<string>()
  for (const secret of secrets) {
    try {
      new Webhook(secret).verify(body, headers, { jsonParse: false })
      return { valid: true, error: null }
    } catch (e) {
      errors.add(e instanceof Error ? e.message : String(e))
    }
  }
  return { valid: false, error: [...errors].join("; ") }
}

interface Receipt {
  readonly id: string
  readonly webhookTimestamp: string | null
}

const receiptColumns = `id, name, webhook_id AS "webhookId", webhook_timestamp AS "webhookTimestamp",
  event_type AS "eventType", order_id AS "orderId", version, event_id AS "eventId", event_timestamp AS "eventTimestamp",
  valid, error, answered, received_at AS "receivedAt"`

const notFound = HttpServerResponse.unsafeJson({ error: "no such endpoint" }, { status: 404 })
const badRequest = (why: string) => HttpServerResponse.unsafeJson({ error: why }, { status: 400 })

export const receiverRouter = (settings: Ref.Ref<ReadonlyMap<string, ReceiverSettings>>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const settingsOf = (name: string) => Effect.map(Ref.get(settings), (all) => all.get(name) ?? defaults)
    /** A route of one endpoint: its name checked (404), its errors answered 500 and logged. */
    const named = <E, R>(handle: (name: string) => Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
      Effect.flatMap(HttpRouter.params, ({ name }) =>
        name !== undefined && endpointName.test(name)
          ? handle(name).pipe(Effect.catchAll((e) =>
            Effect.as(
              Effect.logWarning("webhook receiver error", e),
              HttpServerResponse.unsafeJson({ error: "receiver error" }, { status: 500 })
            )
          ))
          : Effect.succeed(notFound))

    const deliver = (name: string) =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const receivedAt = new Date()
        const body = yield* request.text
        const s = yield* settingsOf(name)
        const { error, valid } = verify(s.secrets, body, request.headers)
        const event = delivered(body)
        const header = request.headers["webhook-timestamp"]
        const record = (answered: number | null) =>
          Effect.uninterruptible(sql<{ id: string }>`
            INSERT INTO webhook_receipts (name, webhook_id, webhook_timestamp, event_type, order_id, version, event_id,
                                          event_timestamp, valid, error, answered, received_at)
            VALUES (${name}, ${request.headers["webhook-id"] ?? null},
                    ${header !== undefined && /^\d{1,15}$/.test(header) ? header : null}::bigint, ${event.type},
                    ${event.orderId}, ${event.version}, ${event.eventId}, ${event.timestamp}::timestamptz, ${valid},
                    ${error}, ${answered}, ${receivedAt.toISOString()}::timestamptz)
            RETURNING id`)
        if (s.hang) {
          yield* record(null)
          return yield* Effect.never
        }
        const status = s.gone ? 410 : valid === false ? 400 : Math.random() < s.failRate ? 500 : s.status
        // a client that gives up during the latency got no answer
        if (s.latencyMs > 0) yield* Effect.sleep(s.latencyMs).pipe(Effect.onInterrupt(() => Effect.ignore(record(null))))
        const [row] = yield* record(status)
        return HttpServerResponse.unsafeJson({ receipt: Number(row!.id), valid, ...(error === null ? {} : { error }) }, {
          status,
          headers: status >= 300 && s.retryAfterSeconds !== null ? { "retry-after": String(s.retryAfterSeconds) } : {}
        })
      })

    const received = (name: string) =>
      Effect.gen(function*() {
        const query = yield* HttpServerRequest.schemaSearchParams(ReceivedQuery).pipe(Effect.option)
        if (query._tag === "None") return badRequest("after: an id ≥ 0; limit: 1 to 10000")
        const rows = yield* sql<Receipt>`
          SELECT ${sql.literal(receiptColumns)} FROM webhook_receipts
          WHERE name = ${name} AND id > ${query.value.after} ORDER BY id LIMIT ${query.value.limit}`
        return HttpServerResponse.unsafeJson(rows.map((r) => ({
          ...r,
          id: Number(r.id),
          webhookTimestamp: r.webhookTimestamp === null ? null : Number(r.webhookTimestamp)
        })))
      })

    const change = (name: string) =>
      HttpServerRequest.schemaBodyJson(Schema.partialWith(ReceiverSettings, { exact: true }), { onExcessProperty: "error" })
        .pipe(
          Effect.flatMap((update) =>
            Ref.modify(settings, (all) => {
              const next = { ...(all.get(name) ?? defaults), ...update }
              return [next, new Map(all).set(name, next)]
            })
          ),
          Effect.map((s) => HttpServerResponse.unsafeJson(s)),
          Effect.catchAll((e) => Effect.succeed(badRequest(e._tag === "ParseError" ? e.message : "a JSON body required")))
        )

    return HttpRouter.empty.pipe(
      HttpRouter.post("/hooks/:name", named(deliver)),
      HttpRouter.get("/hooks/:name/received", named(received)),
      HttpRouter.del(
        "/hooks/:name/received",
        named((name) => Effect.as(sql`DELETE FROM webhook_receipts WHERE name = ${name}`, HttpServerResponse.empty({ status: 204 })))
      ),
      HttpRouter.get("/control/:name", named((name) => Effect.map(settingsOf(name), (s) => HttpServerResponse.unsafeJson(s)))),
      HttpRouter.put("/control/:name", named(change))
    )
  })

/** The running receiver: where it listens (an endpoint's URL is `${url}/hooks/<name>`). */
export class WebhookReceiver extends Context.Tag("WebhookReceiver")<WebhookReceiver, { readonly url: string }>() {}

/** The receiver's HTTP server, configured by RECEIVER_PORT and RECEIVER_HOST (needs a SqlClient for its record). */
export const WebhookReceiverLive = Layer.scoped(
  WebhookReceiver,
  Effect.gen(function*() {
    const options = yield* ReceiverConfig
    const router = yield* receiverRouter(yield* Ref.make(options.endpoints))
    const node = createServer()
    const context = yield* Layer.build(NodeHttpServer.layer(() => node, { port: options.port, host: options.host }))
    const server = Context.get(context, HttpServer.HttpServer)
    yield* server.serve(router).pipe(Effect.provide(context))
    // run before the server's close, which waits for open requests: a hung one is open until its client gives up
    yield* Effect.addFinalizer(() => Effect.sync(() => node.closeAllConnections()))
    const url = `http://${options.host}:${(server.address as HttpServer.TcpAddress).port}`
    yield* Effect.logInfo("webhook receiver simulator listening").pipe(
      Effect.annotateLogs({ type: "STARTUP", role: "webhook-receiver", address: url })
    )
    return { url }
  })
).pipe(Layer.orDie)
