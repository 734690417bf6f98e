/**
 * The operator CLI (@effect/cli): `npm run cli -- <command>` or the `orders-es` bin.
 *   migrate
 *   projections rebuild | verify | status | rebuild-stats
 *   orders show <id> | events <id>
 *   dlq list [--status] | show <id> | replay <id> | discard <id>
 *   reconcile [--since T]
 *   webhooks add <url> [--type T]... [--description D] | list | disable <id> | enable <id> | rotate-secret <id>
 *            | replay <delivery-id>
 * Every command takes --json for machine-readable output and --help (`webhooks add` prints JSON always: the
 * secret is shown once). Exit codes: 0 done; 1 verify or reconcile found differences, a webhook registration was
 * refused or its endpoint or delivery not found (or the command failed); 3 not found / not parked (orders, dlq);
 * 2 usage errors (from @effect/cli).
 */
import { Args, Command, Options } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { Console, Duration, Effect, Layer, Option } from "effect"
import type { DeadLetter } from "./deadletter/DeadLetter.js"
import { DeadLetters } from "./deadletter/DeadLetters.js"
import type { OrderId } from "./domain/Order.js"
import { AppendProjections } from "./Stores.js"
import { PgEventStore } from "./eventstore/PgEventStore.js"
import { EventStore } from "./eventstore/EventStore.js"
import { toEventView, toView } from "./orders/Views.js"
import { KafkaLive } from "./kafka/Kafka.js"
import { LoggingLive } from "./observability/Logging.js"
import { OrdersReadModel, PgOrdersReadModel } from "./projection/OrdersReadModel.js"
import { StatsProjection } from "./projection/StatsProjection.js"
import { type Progress, rebuildOrders, verifyOrders } from "./projection/Rebuild.js"
import { DatabaseLive } from "./Sql.js"
import { HttpPaymentGateway } from "./payment/PaymentGateway.js"
import { makeReconciler, ReconcileConfig } from "./payment/Reconciliation.js"
import type { StoreError } from "./Infrastructure.js"
import { type EndpointView, WebhookEndpoints } from "./webhooks/Endpoints.js"
import { webhookEventTypes } from "./webhooks/EventTypes.js"

const json = Options.boolean("json").pipe(Options.withDescription("print JSON instead of text"))
const NOT_FOUND = 3

const print = (asJson: boolean, value: unknown, text: () => string) =>
  Console.log(asJson ? JSON.stringify(value, (_, v) => (typeof v === "bigint" ? v.toString() : v), 2) : text())

const notFound = (what: string) =>
  Effect.zipRight(Console.error(`${what} not found`), Effect.sync(() => void (process.exitCode = NOT_FOUND)))

const Database = DatabaseLive(2, { unbounded: true })

// ---- migrate ----
const migrate = Command.make("migrate", { json }, ({ json }) =>
  print(json, { migrated: true }, () => "migrations applied")).pipe(
    Command.withDescription("apply pending migrations (they are applied before every command anyway)")
  )

// ---- projections ----
const bar = (p: Progress) => {
  const share = p.total === 0 ? 1 : Math.min(1, p.done / p.total)
  const filled = Math.round(share * 30)
  return `[${"#".repeat(filled)}${".".repeat(30 - filled)}] ${(share * 100).toFixed(1)}% ` +
    `${p.done}/${p.total} events, ${Math.round(p.eventsPerSecond)} ev/s, ETA ${p.etaSeconds.toFixed(0)} s`
}

const rebuild = Command.make("rebuild", { json }, ({ json }) =>
  Effect.gen(function*() {
    const tty = process.stderr.isTTY === true
    const result = yield* rebuildOrders((p) =>
      Effect.sync(() => {
        if (json) return
        process.stderr.write(tty ? `\r${bar(p)}` : `${bar(p)}\n`)
      })
    )
    if (!json && tty) process.stderr.write("\n")
    yield* print(json, result, () =>
      `rebuilt orders: ${result.orders} orders from ${result.events} events in ${result.seconds.toFixed(1)} s ` +
      `(${Math.round(result.events / Math.max(result.seconds, 0.001))} events/s; ${result.caughtUp} streams caught up)`)
  })).pipe(Command.withDescription("replay the log into a fresh orders table and swap it in, writes continuing"))

const verify = Command.make("verify", { json }, ({ json }) =>
  Effect.gen(function*() {
    const differences = yield* verifyOrders
    yield* print(json, { differences: differences.length, orders: differences.slice(0, 100) }, () =>
      differences.length === 0
        ? "orders equals the fold of the log: 0 differences"
        : `${differences.length} differences:\n` + differences.slice(0, 20).map((d) =>
          `  ${d.orderId}: live ${d.live ? `${d.live.status} v${d.live.version}` : "missing"}, ` +
          `log ${d.folded ? `${d.folded.status} v${d.folded.version}` : "no such order"}`
        ).join("\n"))
    if (differences.length > 0) process.exitCode = 1
  })).pipe(Command.withDescription("compare the orders table with the fold of the log; exit 1 on any difference"))

const status = Command.make("status", { json }, ({ json }) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ events: number; orders: number; unpublished: number; lag: number | null; rebuilding: boolean }>`
      SELECT (SELECT count(*) FROM events)::int AS events, (SELECT count(*) FROM orders)::int AS orders,
             (SELECT count(*) FROM outbox WHERE published_at IS NULL)::int AS unpublished,
             (SELECT extract(epoch FROM now() - min(created_at))::float8 FROM outbox WHERE published_at IS NULL) AS lag,
             EXISTS (SELECT 1 FROM pg_tables WHERE tablename = 'orders_rebuild') AS rebuilding`
    yield* print(json, row, () =>
      `events ${row!.events}, orders ${row!.orders}, outbox unpublished ${row!.unpublished} ` +
      `(oldest ${(row!.lag ?? 0).toFixed(3)} s)${row!.rebuilding ? ", a rebuild is under way or was killed" : ""}`)
  })).pipe(Command.withDescription("size of the log and the projection, outbox lag"))

const rebuildStats = Command.make("rebuild-stats", { json }, ({ json }) =>
  Effect.gen(function*() {
    const stats = yield* StatsProjection
    const started = Date.now()
    yield* stats.reset
    yield* stats.catchUp
    const states = yield* stats.byState
    yield* print(json, { seconds: (Date.now() - started) / 1000, ordersByState: states }, () =>
      `stats projection replayed from the start of the log in ${((Date.now() - started) / 1000).toFixed(1)} s: ` +
      states.map((s) => `${s.status} ${s.orders}`).join(", "))
  }).pipe(Effect.provide(StatsProjection.Default))).pipe(
    Command.withDescription("throw the async stats projection away and replay it from the log")
  )

const projections = Command.make("projections").pipe(
  Command.withDescription("the projections: rebuild, verify and status of orders; rebuild-stats"),
  Command.withSubcommands([rebuild, verify, status, rebuildStats])
)

// ---- orders ----
const orderIdArg = Args.text({ name: "order-id" }).pipe(Args.withDescription("the order's id (UUID)"))

const show = Command.make("show", { json, orderId: orderIdArg }, ({ json, orderId }) =>
  Effect.flatMap(
    Effect.flatMap(OrdersReadModel, (m) => m.get(orderId.toLowerCase() as OrderId)),
    Option.match({
      onNone: () => notFound(`order ${orderId}`),
      onSome: (order) =>
        print(json, toView(order), () => {
          const v = toView(order)
          return `${v.orderId} ${v.state} v${v.version} ${v.amount} ${v.currency} user ${v.userId}` +
            (v.reason ? ` (${v.reason})` : "")
        })
    })
  )).pipe(Command.withDescription("one order from the projection"))

const events = Command.make("events", { json, orderId: orderIdArg }, ({ json, orderId }) =>
  Effect.gen(function*() {
    const recorded = yield* (yield* EventStore).readStream(orderId.toLowerCase() as OrderId)
    if (recorded.length === 0) return yield* notFound(`order ${orderId}`)
    const rows = recorded.map(toEventView)
    yield* print(json, rows, () => rows.map((r) => `${r.version} ${r.type} @${r.position} ${r.recordedAt}`).join("\n"))
  })).pipe(Command.withDescription("an order's event stream, in version order"))

const orders = Command.make("orders").pipe(
  Command.withDescription("read orders"),
  Command.withSubcommands([show, events])
)

// ---- dead letters ----
const idArg = Args.integer({ name: "id" }).pipe(Args.withDescription("the dead letter's id"))
const statusOption = Options.choice("status", ["parked", "replayed", "discarded"]).pipe(Options.optional)

/** Only the dlq commands connect to Kafka (replay publishes). */
const DeadLettersLive = DeadLetters.Default.pipe(Layer.provide(KafkaLive))

const dlqList = Command.make("list", { json, status: statusOption }, ({ json, status }) =>
  Effect.gen(function*() {
    const list = yield* (yield* DeadLetters).list(Option.getOrUndefined(status), 1000)
    yield* print(json, list, () =>
      list.length === 0
        ? "no dead letters"
        : list.map((d) => `${d.id} ${d.status} ${d.key ?? "-"} attempts ${d.attempts}: ${d.error.slice(0, 100)}`).join("\n"))
  }).pipe(Effect.provide(DeadLettersLive))).pipe(Command.withDescription("list dead letters"))

const withLetter = (
  name: string,
  description: string,
  run: (d: DeadLetters, id: string) => Effect.Effect<Option.Option<DeadLetter>, StoreError>
) =>
  Command.make(name, { json, id: idArg }, ({ id, json }) =>
    Effect.flatMap(DeadLetters, (d) =>
      Effect.flatMap(run(d, String(id)), Option.match({
        onNone: () => notFound(`parked dead letter ${id}`),
        onSome: (letter) => print(json, letter, () => `${letter.id} ${letter.status} ${letter.key ?? "-"}: ${letter.error}`)
      }))).pipe(Effect.provide(DeadLettersLive))).pipe(Command.withDescription(description))

const dlq = Command.make("dlq").pipe(
  Command.withDescription("dead letters of the payment worker"),
  Command.withSubcommands([
    dlqList,
    withLetter("show", "one dead letter", (d, id) => d.get(id)),
    withLetter("replay", "republish a parked message to its topic", (d, id) => d.replay(id)),
    withLetter("discard", "mark a parked message discarded", (d, id) => d.discard(id))
  ])
)

// ---- reconcile ----
const since = Options.date("since").pipe(
  Options.withDescription("start of the window (ISO 8601); RECONCILE_WINDOW before now by default"),
  Options.optional
)

const reconcile = Command.make("reconcile", { json, since }, ({ json, since }) =>
  Effect.gen(function*() {
    const { window } = yield* ReconcileConfig
    const run = yield* makeReconciler
    const report = yield* run(Option.getOrElse(since, () => new Date(Date.now() - Duration.toMillis(window))))
    yield* print(json, report, () =>
      report.differences.length === 0
        ? `clean: ${report.checked.ours} records of ours and ${report.checked.theirs} of the provider's agree (${report.since} … ${report.until})`
        : `${report.differences.length} differences (${report.since} … ${report.until}):\n` +
          report.differences.slice(0, 50).map((d) => `  ${d.kind} ${d.record} ${d.key} (order ${d.orderId}): ${d.message}`).join("\n"))
    if (report.differences.length > 0) process.exitCode = 1
  }).pipe(
    Effect.catchTag("PaymentUnavailable", (e) =>
      Effect.zipRight(Console.error(`the payment provider could not be asked: ${e.message}`), Effect.sync(() => void (process.exitCode = 1)))),
    Effect.provide(HttpPaymentGateway)
  )).pipe(
    Command.withDescription("compare every charge and refund of the log with the payment provider's ledger; exit 1 on any difference")
  )

// ---- webhooks ----
/** A refused registration, an unknown id: the message on stderr, exit 1. */
const refused = (message: string) => Effect.zipRight(Console.error(message), Effect.sync(() => void (process.exitCode = 1)))
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

const endpointText = (e: EndpointView) =>
  `${e.id} ${e.status} ${e.url} ${e.eventTypes === null ? "all events" : e.eventTypes.join(",")}` +
  (e.disabledReason !== null ? ` (${e.disabledReason})` : "") + (e.description !== null ? `: ${e.description}` : "")

const webhooksAdd = Command.make("add", {
  json,
  url: Args.text({ name: "url" }).pipe(Args.withDescription("where deliveries are POSTed (https://, a public host)")),
  types: Options.text("type").pipe(
    Options.withDescription(`an event type to deliver (${webhookEventTypes.join(", ")}); repeat it for more; every type when omitted`),
    Options.repeated
  ),
  description: Options.text("description").pipe(Options.withDescription("what the endpoint is for"), Options.optional)
}, ({ description, types, url }) =>
  Effect.gen(function*() {
    const text = Option.getOrUndefined(description)
    if (text !== undefined && text.length > 500) return yield* refused("description: at most 500 characters")
    const created = yield* (yield* WebhookEndpoints).create({ url, eventTypes: types.length === 0 ? undefined : types, description: text })
    // the secret is shown here once: always JSON, whatever --json says
    yield* print(true, { ...created.endpoint, secret: created.secret }, () => "")
  }).pipe(
    Effect.catchTag("WebhookRejected", (e) => refused(e.message)),
    Effect.provide(WebhookEndpoints.Default)
  )).pipe(Command.withDescription("register a webhook endpoint; prints it with its signing secret as JSON"))

const webhooksList = Command.make("list", { json }, ({ json }) =>
  Effect.gen(function*() {
    const list = yield* (yield* WebhookEndpoints).list
    yield* print(json, list, () => list.length === 0 ? "no webhook endpoints" : list.map(endpointText).join("\n"))
  }).pipe(Effect.provide(WebhookEndpoints.Default))).pipe(Command.withDescription("list webhook endpoints (without secrets)"))

const withEndpoint = <A>(
  name: string,
  description: string,
  run: (w: WebhookEndpoints, id: string) => Effect.Effect<Option.Option<A>, StoreError>,
  text: (a: A) => string
) =>
  Command.make(name, { json, id: Args.text({ name: "endpoint-id" }).pipe(Args.withDescription("the endpoint's id (UUID)")) }, ({ id, json }) =>
    (UUID.test(id)
      ? Effect.flatMap(WebhookEndpoints, (w) =>
        Effect.flatMap(run(w, id.toLowerCase()), Option.match({
          onNone: () => refused(`webhook endpoint ${id} not found`),
          onSome: (a) => print(json, a, () => text(a))
        })))
      : refused(`webhook endpoint ${id} not found (not a UUID)`)).pipe(Effect.provide(WebhookEndpoints.Default))).pipe(
      Command.withDescription(description)
    )

const webhooksReplay = Command.make("replay", {
  json,
  id: Args.text({ name: "delivery-id" }).pipe(Args.withDescription("the delivery's id (UUID)"))
}, ({ id, json }) =>
  (UUID.test(id)
    ? Effect.flatMap(WebhookEndpoints, (w) =>
      Effect.flatMap(w.replay(id.toLowerCase()), Option.match({
        onNone: () => refused(`webhook delivery ${id} not found`),
        onSome: (d) => print(json, d, () => `${d.id} ${d.status} ${d.type} order ${d.orderId} v${d.version}: back in line`)
      })))
    : refused(`webhook delivery ${id} not found (not a UUID)`)).pipe(Effect.provide(WebhookEndpoints.Default))).pipe(
    Command.withDescription("put one webhook delivery back in line (pending, attempts from 0)")
  )

const webhooks = Command.make("webhooks").pipe(
  Command.withDescription("webhook endpoints and their deliveries"),
  Command.withSubcommands([
    webhooksAdd,
    webhooksList,
    withEndpoint("disable", "stop deliveries to an endpoint", (w, id) => w.setEnabled(id, false), endpointText),
    withEndpoint("enable", "resume deliveries to an endpoint", (w, id) => w.setEnabled(id, true), endpointText),
    withEndpoint(
      "rotate-secret",
      "a new signing secret (printed once); the previous one signs beside it for 24 h",
      (w, id) => Effect.map(w.rotateSecret(id), Option.map(({ endpoint, secret }) => ({ ...endpoint, secret }))),
      (e) => `${endpointText(e)}\nsecret ${e.secret} (the previous one signs until ${e.previousSecretUntil})`
    ),
    webhooksReplay
  ])
)

const root = Command.make("orders-es").pipe(
  Command.withDescription("operate the event-sourced order system"),
  Command.withSubcommands([migrate, projections, orders, dlq, reconcile, webhooks])
)

const cli = Command.run(root, { name: "orders-es", version: "0.1.0" })

const Services = Layer.mergeAll(PgEventStore.pipe(Layer.provide(AppendProjections)), PgOrdersReadModel).pipe(
  Layer.provideMerge(Database)
)

cli(process.argv).pipe(
  Effect.provide(Services),
  Effect.provide(NodeContext.layer),
  Effect.provide(LoggingLive),
  NodeRuntime.runMain({ disablePrettyLogger: true })
)
