/**
 * Readiness of the roles running in this process (docs/ARCHITECTURE.md "Processes", invariant 10): each role
 * registers a check that says whether it is really doing its work (the worker: its consumer joined and
 * consuming), and `GET /health/ready` (or the ops endpoint of a process without the API) reports them all.
 */
import { Effect, Scope } from "effect"

export interface Check {
  readonly ok: boolean
  readonly detail?: unknown
}

export class Readiness extends Effect.Service<Readiness>()("Readiness", {
  sync: () => {
    const checks = new Map<string, Effect.Effect<Check>>()
    return {
      /** Register a check for the lifetime of the current scope. */
      register: (name: string, check: Effect.Effect<Check>) =>
        Effect.zipRight(
          Effect.sync(() => void checks.set(name, check)),
          Effect.flatMap(Effect.scope, (scope) => Scope.addFinalizer(scope, Effect.sync(() => void checks.delete(name))))
        ),
      report: Effect.suspend(() =>
        Effect.forEach([...checks.entries()], ([name, check]) => Effect.map(check, (c) => ({ name, ...c })))
      )
    } as const
  }
}) {}
