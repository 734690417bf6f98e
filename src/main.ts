/**
 * The program: `main.js [roles]` runs the roles of src/Roles.ts in this process (`all`, the default, or a
 * comma list: `api,relay`); `main.js migrate` applies pending migrations and exits (docs/OPERATIONS.md "Commands").
 * The database is created when missing and migrations are applied at startup of every role.
 * SIGTERM/SIGINT: every role stops taking work, finishes what is in flight (the worker commits its offsets,
 * the server drains requests) and exits, by SHUTDOWN_TIMEOUT_MS at the latest.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Config, Effect, Layer, Option } from "effect"
import { ShutdownTimeoutMs } from "./Config.js"
import { Lifecycle, logExit, loggingFor } from "./observability/Logging.js"
import { tracingLayer } from "./observability/Tracing.js"
import { parseRoles, preflight, processLayer, Production, roleNames, type RoleName } from "./Roles.js"
import { boundedRelease, ShutdownBudgetConfig } from "./Shutdown.js"
import { DatabaseLive } from "./Sql.js"

/**
 * Should anything still hang SHUTDOWN_TIMEOUT_MS after SIGTERM/SIGINT, the process says so and exits (code 1).
 * Each role stops within it (the worker interrupts in-flight work at the deadline less min(5 s, a third), to
 * commit and leave in time).
 */
const shutdownDeadline = Effect.flatMap(Effect.orDie(ShutdownTimeoutMs), (deadline) =>
  Effect.sync(() => {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      process.once(signal, () => {
        setTimeout(() => {
          process.stdout.write(JSON.stringify({
            ts: new Date().toISOString(),
            level: "ERROR",
            type: "SHUTDOWN_TIMEOUT",
            msg: `shutdown did not finish within ${deadline} ms: exiting`
          }) + "\n")
          process.exit(1)
        }, deadline).unref()
      })
    }
  }))

const migrate = Effect.scoped(Layer.build(DatabaseLive(undefined, { unbounded: true }))).pipe(
  Effect.zipRight(Effect.logInfo("migrations applied").pipe(Effect.annotateLogs({ type: "STARTUP" })))
)

/**
 * The roles, then the database, each released as one bounded step on top of the steps inside them (a step
 * nobody bounded — a query's cancel, a library's finalizer waiting for a database that answers nothing — ends
 * at the roles' bound): the roles get all but the last 22.5 % of the reserve, the pool's close 10 % of it (and
 * the tracing flush, below, 10 %).
 */
const run = (roles: ReadonlyArray<RoleName>) =>
  Effect.zipRight(
    preflight(roles),
    Effect.flatMap(Effect.orDie(Config.all([ShutdownTimeoutMs, ShutdownBudgetConfig])), ([timeoutMs, budget]) =>
      Layer.launch(
        Lifecycle.pipe(
          Layer.provide(boundedRelease("stop roles", timeoutMs - 1.5 * budget.commitMs, processLayer(roles, Production))),
          Layer.provide(boundedRelease("database close", budget.disconnectMs, DatabaseLive()))
        )
      ))
  )

const argument = process.argv[2] ?? "all"
const roles = parseRoles(argument)
if (argument !== "migrate" && Option.isNone(roles)) {
  process.stderr.write(`unknown role ${JSON.stringify(argument)}; one or more of: all, ${roleNames.join(", ")}; or migrate\n`)
  process.exitCode = 2
} else {
  const program = Option.match(roles, { onNone: () => migrate, onSome: run })
  Effect.zipRight(shutdownDeadline, program).pipe(
    logExit,
    // the spans' last flush, to a collector that may not answer: a disconnect share
    Effect.provide(Layer.unwrapEffect(Effect.map(
      Effect.orDie(ShutdownBudgetConfig),
      (budget) => boundedRelease("tracing flush", budget.disconnectMs, tracingLayer(argument))
    ))),
    Effect.provide(loggingFor(argument)),
    NodeRuntime.runMain({ disablePrettyLogger: true })
  )
}
