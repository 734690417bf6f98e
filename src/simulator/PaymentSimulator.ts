/**
 * The payment provider simulator: a real HTTP service (role `payment-provider`) standing for an external
 * provider, with its own ledger table of charges keyed by idempotency key (tests count charges there).
 *   POST /charges  (Idempotency-Key header; {orderId, amountMinor, currency}) → {chargeId, outcome, replayed}
 *                  the first result of a key is stored and answered again; 503 while in outage or on a
 *                  simulated transient error (nothing charged then)
 *   GET  /charges/:idempotencyKey   the stored result of a key (404: none), charging nothing; 503 in outage
 *   GET  /charges?orderId=&idempotencyKey=&since=   the ledger
 *   POST /refunds  (Idempotency-Key header; {orderId, amountMinor, currency}) → {refundId, outcome, reason?, replayed}:
 *                  as a real provider, never more back than the order's succeeded charge less its refunds — a
 *                  refund above that is `refused` (422), and stored as such; the failure modes apply as to charges
 *   GET  /refunds/:idempotencyKey, GET /refunds?orderId=&idempotencyKey=&since=   as for charges
 *   GET  /failures   the orders that were answered an error at least once
 *   GET|PUT /control  {latencyMs, declineRate, transientErrorRate, outage, failingOrders}: failure modes,
 *                     changeable live
 * It stands for an external system: only the role wiring (src/Roles.ts) and the tests import it; nothing
 * else reads its table.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { NodeHttpServer } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { Config, Context, Duration, Effect, Either, Layer, Ref, Schema } from "effect"
import { randomUUID } from "node:crypto"
import { createServer } from "node:http"
import { listenPort } from "../Config.js"

export const SimulatorSettings = Schema.Struct({
  latencyMs: Schema.Number.pipe(Schema.between(0, 60_000)),
  declineRate: Schema.Number.pipe(Schema.between(0, 1)),
  transientErrorRate: Schema.Number.pipe(Schema.between(0, 1)),
  outage: Schema.Boolean,
  /** Charges of these orders answer 503 (one slow order among healthy ones). */
  failingOrders: Schema.optional(Schema.Array(Schema.String))
})
export type SimulatorSettings = typeof SimulatorSettings.Type

export const SimulatorConfig = Config.all({
  port: listenPort("PROVIDER_PORT", 3100),
  host: Config.string("PROVIDER_HOST").pipe(Config.withDefault("127.0.0.1")),
  latencyMs: Config.number("PROVIDER_LATENCY_MS").pipe(Config.withDefault(20)),
  declineRate: Config.number("PROVIDER_DECLINE_RATE").pipe(Config.withDefault(0)),
  transientErrorRate: Config.number("PROVIDER_TRANSIENT_ERROR_RATE").pipe(Config.withDefault(0)),
  outage: Config.boolean("PROVIDER_OUTAGE").pipe(Config.withDefault(false))
})

const ChargeBody = Schema.Struct({
  orderId: Schema.UUID,
  amountMinor: Schema.BigInt,
  currency: Schema.String.pipe(Schema.length(3))
})

interface LedgerRow {
  readonly idempotency_key: string
  readonly charge_id: string
  readonly order_id: string
  readonly amount_minor: string
  readonly currency: string
  readonly outcome: string
  readonly created_at?: string
}

interface RefundRow {
  readonly idempotency_key: string
  readonly refund_id: string
  readonly order_id: string
  readonly amount_minor: string
  readonly currency: string
  readonly outcome: string
  readonly reason: string | null
  readonly created_at: string
}

const refundJson = (row: RefundRow, replayed: boolean) => ({
  idempotencyKey: row.idempotency_key,
  refundId: row.refund_id,
  orderId: row.order_id,
  amountMinor: row.amount_minor,
  currency: row.currency,
  outcome: row.outcome,
  reason: row.reason,
  createdAt: row.created_at,
  replayed
})

const createdAtText = "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS created_at"
const chargeColumns = `idempotency_key, charge_id, order_id, amount_minor::text AS amount_minor, currency, outcome, ${createdAtText}`
const refundColumns = `idempotency_key, refund_id, order_id, amount_minor::text AS amount_minor, currency, outcome, reason, ${createdAtText}`

const unavailable = (why: string) => HttpServerResponse.unsafeJson({ error: why }, { status: 503 })

export const simulatorRouter = (settings: Ref.Ref<SimulatorSettings>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // orders that were answered an error at least once (GET /failures: the benchmark tells them apart)
    const failed = new Set<string>()
    const refuse = (orderId: string, why: string) => {
      if (failed.size < 1_000_000) failed.add(orderId)
      return unavailable(why)
    }
    const since = (params: Readonly<Record<string, string | ReadonlyArray<string>>>) =>
      typeof params.since === "string" ? params.since : null
    /**
     * One ledger table's reads: the row of a key (none or one); GET <path> (`?orderId=&idempotencyKey=&since=`);
     * GET <path>/:idempotencyKey (404 none, 503 in outage), charging or refunding nothing.
     */
    const ledger = <R extends object>(table: string, columns: string, toJson: (row: R, replayed: boolean) => unknown, noun: string) => {
      const byKey = (key: string) => sql<R>`SELECT ${sql.literal(columns)} FROM ${sql(table)} WHERE idempotency_key = ${key}`
      return {
        byKey,
        list: Effect.gen(function*() {
          const params = yield* HttpServerRequest.ParsedSearchParams
          const orderId = typeof params.orderId === "string" ? params.orderId : null
          const key = typeof params.idempotencyKey === "string" ? params.idempotencyKey : null
          const rows = yield* sql<R>`
            SELECT ${sql.literal(columns)} FROM ${sql(table)}
            WHERE (${orderId}::uuid IS NULL OR order_id = ${orderId}::uuid)
              AND (${key}::text IS NULL OR idempotency_key = ${key}::text)
              AND (${since(params)}::timestamptz IS NULL OR created_at >= ${since(params)}::timestamptz)
            ORDER BY created_at`
          return HttpServerResponse.unsafeJson(rows.map((r) => toJson(r, false)))
        }).pipe(Effect.catchAll(() => Effect.succeed(HttpServerResponse.unsafeJson({ error: "bad query" }, { status: 400 })))),
        one: Effect.gen(function*() {
          const { idempotencyKey } = yield* HttpRouter.params
          if ((yield* Ref.get(settings)).outage) return unavailable("provider outage")
          const [row] = yield* byKey(idempotencyKey ?? "")
          return row ? HttpServerResponse.unsafeJson(toJson(row, true)) : HttpServerResponse.unsafeJson({ error: `no such ${noun}` }, { status: 404 })
        }).pipe(Effect.catchAll(() => Effect.succeed(unavailable("provider error"))))
      }
    }
    /**
     * A POST of a charge or a refund up to its ledger: its key and body — or the answer it gets without reaching
     * the ledger (400; 503 in an outage or for a failing order) — after the simulated latency.
     */
    const accepted = (what: string) =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const key = request.headers["idempotency-key"]
        if (!key) return Either.left(HttpServerResponse.unsafeJson({ error: "Idempotency-Key required" }, { status: 400 }))
        const body = yield* HttpServerRequest.schemaBodyJson(ChargeBody).pipe(Effect.option)
        if (body._tag === "None") return Either.left(HttpServerResponse.unsafeJson({ error: `bad ${what}` }, { status: 400 }))
        const s = yield* Ref.get(settings)
        if (s.outage) return Either.left(refuse(body.value.orderId, "provider outage"))
        if (s.failingOrders?.includes(body.value.orderId)) return Either.left(refuse(body.value.orderId, "simulated failure of this order"))
        if (s.latencyMs > 0) yield* Effect.sleep(Duration.millis(s.latencyMs))
        return Either.right({ key, body: body.value, settings: s })
      })
    const asJson = (row: LedgerRow, replayed: boolean) => ({
      idempotencyKey: row.idempotency_key,
      chargeId: row.charge_id,
      orderId: row.order_id,
      amountMinor: row.amount_minor,
      currency: row.currency,
      outcome: row.outcome,
      ...(row.created_at === undefined ? {} : { createdAt: row.created_at }),
      replayed
    })
    const charges = ledger("provider_charges", chargeColumns, asJson, "charge")
    const refunds = ledger("provider_refunds", refundColumns, refundJson, "refund")
    /** Make a refund: in one transaction that locks the order's charge, so concurrent refunds of one order
     * are judged one after the other against what is left. */
    const makeRefund = (key: string, body: typeof ChargeBody.Type) =>
      sql.withTransaction(Effect.gen(function*() {
        const [charge] = yield* sql<{ amount_minor: string; currency: string }>`
          SELECT amount_minor::text AS amount_minor, currency FROM provider_charges
          WHERE order_id = ${body.orderId} AND outcome = 'succeeded' FOR UPDATE`
        const [{ refunded }] = (yield* sql<{ refunded: string }>`
          SELECT coalesce(sum(amount_minor), 0)::text AS refunded FROM provider_refunds
          WHERE order_id = ${body.orderId} AND outcome = 'succeeded'`) as unknown as [{ refunded: string }]
        const reason = charge === undefined
          ? "no succeeded charge for this order"
          : charge.currency !== body.currency
          ? `the charge was in ${charge.currency}`
          : BigInt(refunded) + body.amountMinor > BigInt(charge.amount_minor)
          ? "above what is left of the charge"
          : null
        const [created] = yield* sql<RefundRow>`
          INSERT INTO provider_refunds (idempotency_key, refund_id, order_id, amount_minor, currency, outcome, reason)
          VALUES (${key}, ${randomUUID()}, ${body.orderId}, ${body.amountMinor.toString()}::bigint, ${body.currency},
                  ${reason === null ? "succeeded" : "refused"}, ${reason})
          ON CONFLICT (idempotency_key) DO NOTHING
          RETURNING ${sql.literal(refundColumns)}`
        return created
      }))
    return HttpRouter.empty.pipe(
      HttpRouter.post(
        "/charges",
        Effect.gen(function*() {
          const call = yield* accepted("charge")
          if (Either.isLeft(call)) return call.left
          const { body, key, settings: s } = call.right
          const known = charges.byKey(key)
          if (s.transientErrorRate > 0) {
            // a known key is answered, never failed: only a new charge may meet a simulated transient error
            const [row] = yield* known
            if (row) return HttpServerResponse.unsafeJson(asJson(row, true))
            if (Math.random() < s.transientErrorRate) return refuse(body.orderId, "simulated transient error")
          }
          const outcome = Math.random() < s.declineRate ? "declined" : "succeeded"
          // one statement on the common path: the insert answers a new key, a known key is read after
          const [created] = yield* sql<LedgerRow>`
            INSERT INTO provider_charges (idempotency_key, charge_id, order_id, amount_minor, currency, outcome)
            VALUES (${key}, ${randomUUID()}, ${body.orderId}, ${body.amountMinor.toString()}::bigint,
                    ${body.currency}, ${outcome})
            ON CONFLICT (idempotency_key) DO NOTHING
            RETURNING idempotency_key, charge_id, order_id, amount_minor::text AS amount_minor, currency, outcome`
          if (created) return HttpServerResponse.unsafeJson(asJson(created, false), { status: 201 })
          const [row] = yield* known
          return HttpServerResponse.unsafeJson(asJson(row!, true))
        }).pipe(Effect.catchAll(() => Effect.succeed(unavailable("provider error"))))
      ),
      HttpRouter.get("/charges", charges.list),
      HttpRouter.get("/charges/:idempotencyKey", charges.one),
      HttpRouter.post(
        "/refunds",
        Effect.gen(function*() {
          const call = yield* accepted("refund")
          if (Either.isLeft(call)) return call.left
          const { body, key, settings: s } = call.right
          const [known] = yield* refunds.byKey(key)
          if (known) return HttpServerResponse.unsafeJson(refundJson(known, true), { status: known.outcome === "refused" ? 422 : 200 })
          if (s.transientErrorRate > 0 && Math.random() < s.transientErrorRate) return refuse(body.orderId, "simulated transient error")
          const created = yield* makeRefund(key, body)
          const row = created ?? (yield* refunds.byKey(key))[0]!
          return HttpServerResponse.unsafeJson(refundJson(row, created === undefined), {
            status: row.outcome === "refused" ? 422 : created === undefined ? 200 : 201
          })
        }).pipe(Effect.catchAll(() => Effect.succeed(unavailable("provider error"))))
      ),
      HttpRouter.get("/refunds", refunds.list),
      HttpRouter.get("/refunds/:idempotencyKey", refunds.one),
      HttpRouter.get("/failures", Effect.sync(() => HttpServerResponse.unsafeJson({ orders: [...failed] }))),
      HttpRouter.get("/control", Effect.map(Ref.get(settings), (s) => HttpServerResponse.unsafeJson(s))),
      HttpRouter.put(
        "/control",
        HttpServerRequest.schemaBodyJson(Schema.partialWith(SimulatorSettings, { exact: true })).pipe(
          Effect.flatMap((change) => Ref.updateAndGet(settings, (s) => ({ ...s, ...change }))),
          Effect.map((s) => HttpServerResponse.unsafeJson(s)),
          Effect.catchAll(() => Effect.succeed(HttpServerResponse.unsafeJson({ error: "bad settings" }, { status: 400 })))
        )
      )
    )
  })

/** The running simulator: where it listens and its live settings (tests change failure modes through it). */
export class PaymentSimulator extends Context.Tag("PaymentSimulator")<PaymentSimulator, {
  readonly url: string
  readonly settings: Ref.Ref<SimulatorSettings>
}>() {}

/** The simulator's HTTP server, configured by the PROVIDER_* variables (needs a SqlClient for its ledger). */
export const PaymentSimulatorLive = Layer.scoped(
  PaymentSimulator,
  Effect.gen(function*() {
    const options = yield* SimulatorConfig
    const settings = yield* Ref.make<SimulatorSettings>({
      latencyMs: options.latencyMs,
      declineRate: options.declineRate,
      transientErrorRate: options.transientErrorRate,
      outage: options.outage
    })
    const router = yield* simulatorRouter(settings)
    const context = yield* Layer.build(NodeHttpServer.layer(createServer, { port: options.port, host: options.host }))
    const server = Context.get(context, HttpServer.HttpServer)
    yield* server.serve(router).pipe(Effect.provide(context))
    const address = server.address as HttpServer.TcpAddress
    const url = `http://${options.host}:${address.port}`
    yield* Effect.logInfo("payment provider simulator listening").pipe(
      Effect.annotateLogs({ type: "STARTUP", role: "payment-provider", address: url })
    )
    return { url, settings }
  })
).pipe(Layer.orDie)
