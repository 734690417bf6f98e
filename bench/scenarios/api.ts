/**
 * The api scenarios: our POST /orders alone (`dist/main.js api`: nothing consumes the outbox), the
 * like-for-like comparison with Express + pg; and `api-previous`, the same for the api role of an earlier
 * commit built in a worktree.
 */
import { baselineCheckout } from "../lib/baseline.js"
import { dbUrl, psql, type Settings } from "../lib/common.js"
import { runHttpScenario } from "../lib/ladder.js"
import type { CpuProbe } from "../lib/processes.js"

// our POST path alone: the api role in its own process, nothing consuming the outbox; `node` another Node
// binary (the `api-node26` scenario: the same build on the current LTS, scripts/node.sh)
export const runApi = (settings: Settings, probes: ReadonlyArray<CpuProbe>, brokers: string, name = "api", node?: string) =>
  runHttpScenario(settings, name, [...settings.nodeFlags, "dist/main.js", "api"], "http://127.0.0.1:3205/health/ready", probes, {
    DATABASE_URL: dbUrl(settings.benchDb),
    KAFKA_BROKERS: brokers,
    PORT: "3205",
    HOST: "127.0.0.1"
  }, node)

// the api role of the code before this round's change, measured the same way in this run (issue 14: CPU
// per order no worse than before); its own database, since its migrations may differ
export const runApiPrevious = async (settings: Settings, probes: ReadonlyArray<CpuProbe>, brokers: string, apiBaselineRef: string) => {
  const database = `${settings.benchDb}_api_previous`
  psql(dbUrl("postgres"), "-c", `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
  const checkout = baselineCheckout(apiBaselineRef)
  try {
    return await runHttpScenario(settings, "api-previous", [...settings.nodeFlags, `${checkout.dir}/dist/main.js`, "api"], "http://127.0.0.1:3205/health/ready", probes, {
      DATABASE_URL: dbUrl(database),
      KAFKA_BROKERS: brokers,
      PORT: "3205",
      HOST: "127.0.0.1"
    })
  } finally {
    checkout.remove()
  }
}
