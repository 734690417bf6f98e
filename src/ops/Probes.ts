/**
 * The background probes behind readiness (src/Readiness.ts): the database (answers, every migration applied)
 * for every process, the broker (answers for the orders topic) for a process with Kafka. Each probe is one
 * cheap statement or request a second, whatever the rate of /health/ready.
 */
import { NodeContext } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { Config, Effect, Layer } from "effect"
import { Kafka } from "../kafka/Kafka.js"
import { probe, type ProbeSettings } from "../Readiness.js"
import { ShutdownBudgetConfig } from "../Shutdown.js"
import { appliedMigrationId, latestMigrationId } from "../Sql.js"

/** READINESS_PROBE_MS: how often; a probe not answered within it fails ("timeout"); a verdict older than
 * three of them is "stale". */
export const ProbeConfig = Config.all({
  everyMs: Config.integer("READINESS_PROBE_MS").pipe(Config.withDefault(1_000)),
  budget: ShutdownBudgetConfig
}).pipe(Config.map(({ budget, everyMs }): ProbeSettings => ({
  everyMs,
  timeoutMs: everyMs,
  maxAgeMs: 3 * everyMs,
  stopMs: budget.disconnectMs
})))

/** `database`: the database answers with every migration applied. */
export const DatabaseProbeLive = Layer.scopedDiscard(Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const latest = yield* latestMigrationId
  const settings = yield* Effect.orDie(ProbeConfig)
  yield* probe(
    "database",
    settings,
    Effect.map(Effect.provideService(appliedMigrationId, SqlClient.SqlClient, sql), (applied) =>
      applied >= latest
        ? { ok: true }
        : { ok: false, reason: "migrations pending", detail: { applied, latest } })
  )
})).pipe(Layer.provide(NodeContext.layer))

/** `broker`: the Kafka cluster answers; `required: false` where the process can do its work without it. */
export const BrokerProbeLive = (required: boolean) =>
  Layer.scopedDiscard(Effect.gen(function*() {
    const kafka = yield* Kafka
    const settings = yield* Effect.orDie(ProbeConfig)
    yield* probe("broker", settings, Effect.as(kafka.ping, { ok: true }), { required })
  }))
