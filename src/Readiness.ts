/**
 * Readiness of this process (docs/ARCHITECTURE.md "Processes", invariant 10): each dependency registers a check
 * under its name — `database` (every process), `broker` (a process with Kafka), `consumer` (the worker) — and
 * `GET /health/ready` (or the ops endpoint of a process without the API) reports each one separately, 503
 * while any check the process needs fails. The answer never waits for a dependency: a check reads what a
 * background probe saw (the database's, the broker's: `probe` below, its age reported and bounded) or the
 * process's own state, and each check is itself bounded by `checkMs` — a check that does not answer in time
 * reports `ok: false, reason: "timeout"` — so the endpoint answers within a second whatever hangs.
 */
import { Clock, Duration, Effect, Metric, Ref, Schedule, Scope } from "effect"
import { forkBounded } from "./Shutdown.js"

export interface Check {
  readonly ok: boolean
  /** Why not ok, in a word or a sentence. */
  readonly reason?: string
  readonly detail?: unknown
}

/** A check as reported: `required` ones decide readiness, the others are shown. */
export interface Reported extends Check {
  readonly required: boolean
  /** For a probed dependency: how long ago its last probe finished, in ms. */
  readonly ageMs?: number
}

/** Every check answers within this (the endpoint within 1 s). */
export const checkMs = 500

export const readinessCheckOk = Metric.gauge("readiness_check_ok", {
  description: "1 while the readiness check (tag `check`: database, broker, consumer) passes"
})

export const readinessChanges = Metric.counter("readiness_changes_total", {
  description: "a readiness check's probe changed its verdict (tag `check`, `ok`)",
  incremental: true
})

export class Readiness extends Effect.Service<Readiness>()("Readiness", {
  sync: () => {
    const checks = new Map<string, { readonly required: boolean; readonly check: Effect.Effect<Check & { ageMs?: number }> }>()
    return {
      /** Register a check for the lifetime of the current scope (`required: false`: reported, not deciding). */
      register: (name: string, check: Effect.Effect<Check & { ageMs?: number }>, options?: { readonly required?: boolean }) =>
        Effect.zipRight(
          Effect.sync(() => void checks.set(name, { required: options?.required ?? true, check })),
          Effect.flatMap(Effect.scope, (scope) => Scope.addFinalizer(scope, Effect.sync(() => void checks.delete(name))))
        ),
      /** Every check, each within `checkMs`. */
      report: Effect.suspend(() =>
        Effect.forEach(
          [...checks.entries()],
          ([name, { check, required }]) =>
            check.pipe(
              Effect.interruptible,
              Effect.disconnect,
              Effect.timeoutTo({
                duration: Duration.millis(checkMs),
                onSuccess: (c): Reported => ({ ...c, required }),
                onTimeout: (): Reported => ({ ok: false, required, reason: "timeout" })
              }),
              Effect.map((c) => [name, c] as const)
            ),
          { concurrency: "unbounded" }
        ).pipe(Effect.map((entries) => Object.fromEntries(entries) as Record<string, Reported>))
      )
    } as const
  }
}) {}

export interface ProbeSettings {
  /** Probe this often. */
  readonly everyMs: number
  /** A probe not answered within this failed ("timeout"). */
  readonly timeoutMs: number
  /** A verdict older than this is not trusted (the probe itself hangs): not ok, "stale". */
  readonly maxAgeMs: number
  /** Shutdown share for stopping the probe (src/Shutdown.ts). */
  readonly stopMs: number
}

/**
 * A dependency probed in the background every `everyMs` (each probe bounded by `timeoutMs`, abandoned when
 * it does not answer), registered as the check `name`: the last verdict and its age. A change of verdict is
 * a READINESS line and counted; `readiness_check_ok{check}` follows it.
 */
export const probe = <E>(
  name: string,
  settings: ProbeSettings,
  attempt: Effect.Effect<Check, E>,
  options?: { readonly required?: boolean }
) =>
  Effect.gen(function*() {
    const readiness = yield* Readiness
    const gauge = readinessCheckOk.pipe(Metric.tagged("check", name))
    const last = yield* Ref.make<{ readonly check: Check; readonly at: number } | undefined>(undefined)
    const once = Effect.gen(function*() {
      const check = yield* attempt.pipe(
        Effect.interruptible,
        Effect.disconnect,
        Effect.timeoutFail({ duration: Duration.millis(settings.timeoutMs), onTimeout: () => "timeout" as const }),
        Effect.catchAll((e): Effect.Effect<Check> =>
          Effect.succeed({ ok: false, reason: e === "timeout" ? "timeout" : String((e as { message?: unknown })?.message ?? e).slice(0, 300) })
        )
      )
      const at = yield* Clock.currentTimeMillis
      const before = yield* Ref.getAndSet(last, { check, at })
      yield* Metric.set(gauge, check.ok ? 1 : 0)
      if (before === undefined || before.check.ok !== check.ok) {
        yield* (check.ok ? Effect.logInfo : Effect.logWarning)(`${name} ${check.ok ? "ready" : "not ready"}`).pipe(
          Effect.annotateLogs({ type: "READINESS", check: name, ok: check.ok, reason: check.reason ?? null }),
          Effect.zipRight(Metric.increment(Metric.tagged(Metric.tagged(readinessChanges, "check", name), "ok", String(check.ok))))
        )
      }
    })
    // the first verdict before the process reports STARTUP (bounded as every probe)
    yield* once
    yield* forkBounded(`${name} probe stop`, settings.stopMs, Effect.repeat(once, Schedule.spaced(Duration.millis(settings.everyMs))))
    yield* readiness.register(
      name,
      Effect.gen(function*() {
        const seen = yield* Ref.get(last)
        if (seen === undefined) return { ok: false, reason: "not probed yet" }
        const ageMs = (yield* Clock.currentTimeMillis) - seen.at
        return ageMs > settings.maxAgeMs
          ? { ok: false, reason: "stale", ageMs, detail: seen.check }
          : { ...seen.check, ageMs }
      }),
      options
    )
  })
