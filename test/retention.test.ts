/**
 * Retention (issue 13, item 6) on the real PostgreSQL: rows older than the horizon are deleted in batches —
 * published outbox rows, processed inbox rows, discarded dead letters, and Idempotency-Key records older than
 * their own time to live (IDEMPOTENCY_TTL_MS) — and nothing else: an unpublished outbox row, a parked dead
 * letter, a row younger than its horizon all stay. Each deletion is counted.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Metric, TestClock, TestServices } from "effect"
import { randomUUID } from "node:crypto"
import { renderPrometheus } from "../src/observability/Metrics.js"
import { Retention, retentionDeleted, RetentionLive } from "../src/retention/Retention.js"
import { onTestDatabase } from "./support/TestDatabase.js"
import { waitFor } from "./support/waitFor.js"

const config = Layer.setConfigProvider(
  ConfigProvider.fromMap(new Map([["RETENTION_HORIZON_HOURS", "168"], ["RETENTION_BATCH_SIZE", "3"], ["RETENTION_INTERVAL_MS", "3600000"], ["IDEMPOTENCY_TTL_MS", "86400000"]]))
)

const endpointId = randomUUID()

/** Rows of every kind, `daysAgo` old. */
const seed = (daysAgo: number, n: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const at = new Date(Date.now() - daysAgo * 86_400_000)
    yield* sql`INSERT INTO webhook_endpoints (id, url, secret) VALUES (${endpointId}, 'https://hooks.example.com/', 'whsec_AAAA') ON CONFLICT DO NOTHING`
    for (let i = 0; i < n; i++) {
      const [{ p }] = yield* sql<{ p: string }>`SELECT (coalesce(max(position), 0) + 1)::text AS p FROM outbox`
      yield* sql`INSERT INTO outbox (position, stream_id, created_at, published_at) VALUES (${p}::bigint, ${randomUUID()}, ${at}, ${at})`
      yield* sql`INSERT INTO outbox (position, stream_id, created_at) VALUES (${p}::bigint + 1, ${randomUUID()}, ${at})` // never published
      yield* sql`INSERT INTO inbox (consumer, message_id, processed_at) VALUES ('w', ${randomUUID()}, ${at})`
      yield* sql`INSERT INTO idempotency_keys (key, fingerprint, status, created_at) VALUES (${randomUUID()}, 'f', 'in_flight', ${at})`
      for (const status of ["delivered", "failed", "pending"]) {
        yield* sql`INSERT INTO webhook_deliveries (id, endpoint_id, event_id, order_id, version, event_type, body, event_recorded_at, status, delivered_at, created_at)
                   VALUES (${randomUUID()}, ${endpointId}, ${randomUUID()}, ${randomUUID()}, 1, 'order.placed', '{}', ${at}, ${status},
                           ${status === "delivered" ? at : null}, ${at})`
      }
      for (const status of ["discarded", "parked", "replayed"]) {
        yield* sql`INSERT INTO dead_letters (consumer, topic, partition, "offset", value, error, attempts, status, created_at, updated_at)
                   VALUES ('w', 't', 0, ${randomUUID()}, 'v', 'e', 1, ${status}, ${at}, ${at})`
      }
    }
  }).pipe(Effect.orDie)

const counts = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const [row] = yield* sql<Record<string, number>>`SELECT
    (SELECT count(*) FROM outbox WHERE published_at IS NOT NULL)::int AS published,
    (SELECT count(*) FROM outbox WHERE published_at IS NULL)::int AS unpublished,
    (SELECT count(*) FROM inbox)::int AS inbox,
    (SELECT count(*) FROM idempotency_keys)::int AS keys,
    (SELECT count(*) FROM dead_letters WHERE status = 'discarded')::int AS discarded,
    (SELECT count(*) FROM dead_letters WHERE status <> 'discarded')::int AS kept,
    (SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered')::int AS delivered,
    (SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered')::int AS undelivered`
  return row!
}).pipe(Effect.orDie)

const deletedMetric = (table: string) => Effect.map(Metric.value(Metric.tagged(retentionDeleted, "table", table)), (s) => s.count)

describe("retention", () => {
  layer(onTestDatabase("retention", Retention.Default.pipe(Layer.provide(config))), { excludeTestServices: true })((it) => {
    it.effect("deletes old published outbox, inbox, discarded dead-letter and expired key rows in batches; keeps the rest", () =>
      Effect.gen(function*() {
        const retention = yield* Retention
        yield* seed(10, 7) // older than the 7-day horizon
        yield* seed(6, 2) // younger than the horizon, older than the keys' 24 h time to live
        yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql`INSERT INTO idempotency_keys (key, fingerprint, status) VALUES (${randomUUID()}, 'f', 'in_flight')`).pipe(Effect.orDie)
        const before = { outbox: yield* deletedMetric("outbox"), inbox: yield* deletedMetric("inbox"), dl: yield* deletedMetric("dead_letters"), keys: yield* deletedMetric("idempotency_keys") }
        const deleted = yield* retention.runOnce
        // batches of 3: 7 old rows need three statements, all done in one pass
        assert.deepStrictEqual(deleted, { outbox: 7, inbox: 7, dead_letters: 7, webhook_deliveries: 7, idempotency_keys: 9 })
        assert.deepStrictEqual(yield* counts, { published: 2, unpublished: 9, inbox: 2, keys: 1, discarded: 2, kept: 18, delivered: 2, undelivered: 18 })
        assert.strictEqual((yield* deletedMetric("outbox")) - before.outbox, 7)
        assert.strictEqual((yield* deletedMetric("inbox")) - before.inbox, 7)
        assert.strictEqual((yield* deletedMetric("dead_letters")) - before.dl, 7)
        assert.strictEqual((yield* deletedMetric("idempotency_keys")) - before.keys, 9)
        // nothing more to do: a second pass deletes nothing
        assert.deepStrictEqual(yield* retention.runOnce, { outbox: 0, inbox: 0, dead_letters: 0, webhook_deliveries: 0, idempotency_keys: 0 })
        const text = yield* renderPrometheus([])
        assert.include(text, `retention_deleted_rows_total{table="outbox"}`)
        assert.include(text, `retention_failures_total{table="inbox"} 0`)
      }))
  })

  layer(onTestDatabase("retention_job", Layer.empty))((it) => {
    it.scoped("the worker's job: a pass when it starts, then one every RETENTION_INTERVAL_MS (TestClock)", () =>
      Effect.gen(function*() {
        const gone = (c: Record<string, number>) => c.published === 0 && c.inbox === 0 && c.discarded === 0 && c.keys === 0 && c.delivered === 0
        yield* seed(30, 1)
        yield* Layer.build(RetentionLive.pipe(Layer.provide(config))) // interval: one hour
        yield* TestServices.provideLive(waitFor("the first pass", counts, gone))
        yield* seed(30, 1)
        yield* TestClock.adjust("59 minutes")
        yield* TestServices.provideLive(Effect.sleep("300 millis"))
        assert.isFalse(gone(yield* counts), "no pass before the interval")
        yield* TestClock.adjust("1 minute")
        yield* TestServices.provideLive(waitFor("the second pass", counts, gone))
        assert.deepStrictEqual(yield* counts, { published: 0, unpublished: 2, inbox: 0, keys: 0, discarded: 0, kept: 4, delivered: 0, undelivered: 4 })
      }))
  })
})
