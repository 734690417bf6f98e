/**
 * Retention: keeps the bookkeeping tables bounded (issue 13). A periodic job of the worker role deletes, in
 * small batches (each its own short statement, rows locked by another deleter skipped), rows older than the
 * horizon (RETENTION_HORIZON_HOURS, default 7 days):
 *   - outbox rows published before the horizon (an unpublished row is never deleted, however old: invariant 6);
 *   - inbox rows processed before the horizon. The horizon must stay longer than the topic's retention: a
 *     redelivery older than the inbox row would be handled again — its appends are no-ops (ids derived from
 *     the event id) and its charge is answered by the provider from its first result (same key);
 *   - dead letters discarded before the horizon (parked and replayed ones stay: they are the operator's record);
 *   - webhook deliveries delivered before the horizon (failed and pending ones stay: replayable);
 *   - Idempotency-Key records older than their own time to live (IDEMPOTENCY_TTL_MS, 24 h; not the horizon):
 *     past it `claim` already treats a record as absent, this only frees the space.
 * Each deleted row is counted in `retention_deleted_rows_total{table}`; a failed pass is logged
 * (RETENTION_ERROR) and counted in `retention_failures_total{table}`, and the next pass tries again.
 * More sweeps are one `Sweep` each in `sweeps`; each table's DELETE is defined in its owner's folder.
 */
import { SqlClient } from "@effect/sql"
import { Config, Duration, Effect, Layer, Metric, Schedule } from "effect"
import { IdempotencyTtlMs } from "../Config.js"
import { deleteDiscarded } from "../deadletter/DeadLetters.js"
import { deleteExpired } from "../idempotency/IdempotencyKeys.js"
import { deleteProcessed } from "../inbox/Inbox.js"
import { deletePublished } from "../outbox/Outbox.js"
import { deleteDelivered } from "../webhooks/Endpoints.js"

export const RetentionConfig = Config.all({
  horizonHours: Config.number("RETENTION_HORIZON_HOURS").pipe(Config.withDefault(24 * 7)),
  intervalMs: Config.integer("RETENTION_INTERVAL_MS").pipe(Config.withDefault(60_000)),
  batchSize: Config.integer("RETENTION_BATCH_SIZE").pipe(Config.withDefault(1000)),
  idempotencyTtlMs: IdempotencyTtlMs
})
export type RetentionConfig = Config.Config.Success<typeof RetentionConfig>

export const retentionDeleted = Metric.counter("retention_deleted_rows_total", {
  description: "rows deleted by the retention job, by table",
  incremental: true
})
export const retentionFailures = Metric.counter("retention_failures_total", {
  description: "retention passes that failed, by table",
  incremental: true
})

/** One kind of old row: deletes at most `limit` of them older than its horizon, returns how many it deleted. */
export interface Sweep {
  readonly table: string
  /** The age past which its rows go (for the log line). */
  readonly horizonHours: number
  readonly delete: (limit: number) => Effect.Effect<number, unknown>
}

export class Retention extends Effect.Service<Retention>()("Retention", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const config = yield* RetentionConfig
    // each table's deletion is its owner's
    const hours = config.horizonHours
    const olderThan = (table: string, remove: (hours: number, limit: number) => Effect.Effect<number, unknown>): Sweep => ({
      table,
      horizonHours: hours,
      delete: (limit) => remove(hours, limit)
    })
    const sweeps: ReadonlyArray<Sweep> = [
      olderThan("outbox", deletePublished(sql)),
      olderThan("inbox", deleteProcessed(sql)),
      olderThan("dead_letters", deleteDiscarded(sql)),
      olderThan("webhook_deliveries", deleteDelivered(sql)),
      {
        table: "idempotency_keys",
        horizonHours: config.idempotencyTtlMs / 3_600_000,
        delete: (limit) => deleteExpired(sql)(config.idempotencyTtlMs, limit)
      }
    ]
    for (const s of sweeps) {
      yield* Metric.incrementBy(Metric.tagged(retentionDeleted, "table", s.table), 0)
      yield* Metric.incrementBy(Metric.tagged(retentionFailures, "table", s.table), 0)
    }

    /** Batches of one sweep until a batch comes back short; the rows deleted. A failure is logged and counted. */
    const runSweep = (sweep: Sweep) => {
      const deleted = Metric.tagged(retentionDeleted, "table", sweep.table)
      const loop = (total: number): Effect.Effect<number, unknown> =>
        Effect.flatMap(sweep.delete(config.batchSize), (n) =>
          Metric.incrementBy(deleted, n).pipe(
            Effect.zipRight(n < config.batchSize ? Effect.succeed(total + n) : loop(total + n))
          ))
      return loop(0).pipe(
        Effect.tap((n) =>
          n > 0
            ? Effect.logInfo("old rows deleted").pipe(
              Effect.annotateLogs({ type: "RETENTION", table: sweep.table, rows: n, horizonHours: sweep.horizonHours })
            )
            : Effect.void
        ),
        Effect.catchAllCause((cause) =>
          Effect.logWarning("retention pass failed").pipe(
            Effect.annotateLogs({ type: "RETENTION_ERROR", table: sweep.table, error: String(cause).slice(0, 500) }),
            Effect.zipRight(Metric.increment(Metric.tagged(retentionFailures, "table", sweep.table))),
            Effect.as(0)
          )
        )
      )
    }

    return {
      config,
      /** One pass over every table: rows deleted per table. */
      runOnce: Effect.forEach(sweeps, (s) => Effect.map(runSweep(s), (n) => [s.table, n] as const)).pipe(
        Effect.map((pairs) => Object.fromEntries(pairs) as Record<string, number>)
      )
    } as const
  })
}) {}

/** The periodic job (worker role): a pass at start, then every RETENTION_INTERVAL_MS. */
export const RetentionLive = Layer.scopedDiscard(
  Effect.gen(function*() {
    const retention = yield* Retention
    yield* Effect.forkScoped(
      Effect.repeat(retention.runOnce, Schedule.spaced(Duration.millis(retention.config.intervalMs)))
    )
  })
).pipe(Layer.provide(Retention.Default))
