/**
 * What an append costs: orders driven through the order actors over PostgreSQL (PlaceOrder with an
 * Idempotency-Key response, StartPayment and RecordPaymentSucceeded each with an inbox row: every inline
 * projection writes), `CONCURRENCY` at a time. Prints appends per second, client CPU per append and
 * PostgreSQL commits per append (pg_stat_database of its own database: one commit per append statement, so
 * below 1 when group commit shares statements). Run: `node --import tsx bench/append-cost.ts [orders] [concurrency]`.
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Logger, LogLevel, Redacted } from "effect"
import { OrderActors } from "../src/actor/OrderActors.js"
import { completesKey } from "../src/idempotency/IdempotencyCompletion.js"
import { IdempotencyKeys } from "../src/idempotency/IdempotencyKeys.js"
import { finishesMessage } from "../src/inbox/Inbox.js"
import { PgStores } from "../src/Stores.js"
import { cmd, newId, newOrderId } from "../test/support/fixtures.js"
import { TestDatabase, testDatabaseUrl } from "../test/support/TestDatabase.js"

const orders = Number(process.argv[2] ?? 2000)
const concurrency = Number(process.argv[3] ?? 64)
const url = testDatabaseUrl("bench_append")

const commits = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ n: string }>`SELECT xact_commit::text AS n FROM pg_stat_database WHERE datname = current_database()`).pipe(
    Effect.map(([row]) => Number(row!.n))
  )

const load = Effect.gen(function*() {
  const actors = yield* OrderActors
  const keys = yield* IdempotencyKeys
  const one = Effect.gen(function*() {
    const orderId = newOrderId()
    const paymentId = newId<never>()
    // a key claimed as a request claims it, then completed by the order's append (its guard reads the claim)
    const key = newId()
    const token = newId()
    yield* keys.claim({ key, fingerprint: "bench", token, leaseMs: 60_000, ttlMs: 86_400_000 })
    yield* actors.execute(cmd.place(orderId), { participants: completesKey(key, token, (o) => ({ status: 201, body: { id: o.orderId } })) })
    yield* actors.execute(cmd.start(paymentId, orderId), { participants: finishesMessage({ consumer: "bench", messageId: newId() }) })
    yield* actors.execute(cmd.succeed(paymentId, orderId), { participants: finishesMessage({ consumer: "bench", messageId: newId() }) })
  })
  const cpu = process.cpuUsage()
  const t0 = performance.now()
  yield* Effect.forEach(Array.from({ length: orders }), () => one, { concurrency, discard: true })
  const seconds = (performance.now() - t0) / 1000
  const used = process.cpuUsage(cpu)
  return { seconds, cpuUs: used.user + used.system }
}).pipe(
  // its own pool: closed before the commits are counted (a backend's statistics are flushed when it exits)
  Effect.provide(OrderActors.Default.pipe(Layer.provideMerge(PgStores), Layer.provide(PgClient.layer({ url: Redacted.make(url) })))),
  Effect.orDie
)

const program = Effect.gen(function*() {
  const before = yield* commits
  const { cpuUs, seconds } = yield* load
  yield* Effect.sleep("1 second")
  const appends = orders * 3
  const result = {
    orders,
    concurrency,
    appends,
    appendsPerSecond: Math.round(appends / seconds),
    cpuUsPerAppend: Math.round(cpuUs / appends),
    commitsPerAppend: Number((((yield* commits) - before) / appends).toFixed(3))
  }
  console.log(JSON.stringify(result))
}).pipe(Effect.provide(TestDatabase("bench_append", url)), Logger.withMinimumLogLevel(LogLevel.Warning))

Effect.runPromise(program).catch((e) => {
  console.error(e)
  process.exit(1)
})
