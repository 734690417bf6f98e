/**
 * Removes Idempotency-Key records older than their time to live (IDEMPOTENCY_TTL_MS, 24 h by default), in
 * batches, every IDEMPOTENCY_EXPIRY_INTERVAL_MS; runs in the api role. Counted in
 * `idempotency_keys_expired_total`; a failed round is logged and the next one tries again. (A record past its
 * time to live but not yet deleted is already treated as absent by `claim`.)
 */
import { Config, Duration, Effect, Layer, Metric, Schedule } from "effect"
import { IdempotencyTtlMs } from "../Config.js"
import { IdempotencyKeys } from "./IdempotencyKeys.js"

export interface ExpirySettings {
  readonly ttlMs: number
  readonly intervalMs: number
  readonly batch?: number
}

export const idempotencyKeysExpired = Metric.counter("idempotency_keys_expired_total", {
  description: "Idempotency-Key records deleted after their time to live",
  incremental: true
})

/** One round: batches until a batch comes back short; how many records were deleted. */
export const expireRound = (settings: ExpirySettings) =>
  Effect.gen(function*() {
    const keys = yield* IdempotencyKeys
    const batch = settings.batch ?? 1000
    let total = 0
    while (true) {
      const n = yield* keys.expire(settings.ttlMs, batch)
      total += n
      yield* Metric.incrementBy(idempotencyKeysExpired, n)
      if (n < batch) break
    }
    if (total > 0) {
      yield* Effect.logInfo("expired idempotency keys").pipe(Effect.annotateLogs({ type: "IDEMPOTENCY_EXPIRED", count: total }))
    }
    return total
  })

export const IdempotencyExpiryLive = (settings: ExpirySettings) =>
  Layer.scopedDiscard(
    expireRound(settings).pipe(
      Effect.catchAllCause((cause) =>
        Effect.logWarning("idempotency key expiry failed; retrying next round").pipe(
          Effect.annotateLogs({ type: "PROCESSING_ERROR", job: "idempotency-expiry", cause: String(cause) })
        )
      ),
      Effect.repeat(Schedule.spaced(Duration.millis(settings.intervalMs))),
      Effect.forkScoped
    )
  )

/** The job with its settings read from the environment (the api role). */
export const IdempotencyExpiryFromConfig = Layer.unwrapEffect(
  Effect.map(
    Effect.orDie(Config.all({
      ttlMs: IdempotencyTtlMs,
      intervalMs: Config.integer("IDEMPOTENCY_EXPIRY_INTERVAL_MS").pipe(Config.withDefault(60_000))
    })),
    IdempotencyExpiryLive
  )
)
