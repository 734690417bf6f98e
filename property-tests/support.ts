/**
 * Run counts and seeds of the property suite (its layers: harness.ts; its arbitraries: the fixtures shared
 * with the tests, test/support/fixtures.ts).
 *
 * Runs: `npm test` → PROPERTY_RUNS_FAST (default 200) for pure/in-memory properties and PROPERTY_RUNS_PG
 * (default 20) for PostgreSQL-backed ones; `npm run test:props` sets PROPERTY_RUNS_FULL=1 → 1000 / 100.
 * PROPERTY_RUNS overrides both. A failure prints its seed and path; FC_SEED=… FC_PATH=… replay it exactly.
 */
import fc from "fast-check"

const full = process.env.PROPERTY_RUNS_FULL === "1"
const override = process.env.PROPERTY_RUNS ? Number(process.env.PROPERTY_RUNS) : undefined

export type Backend = "memory" | "postgres"

export const runsFor = (backend: Backend | "pure") =>
  override ?? (backend === "postgres"
    ? Number(process.env.PROPERTY_RUNS_PG ?? (full ? 100 : 20))
    : Number(process.env.PROPERTY_RUNS_FAST ?? (full ? 1000 : 200)))

/** fast-check parameters: run count, and the seed/path to replay when FC_SEED / FC_PATH are set. */
export const params = (backend: Backend | "pure"): { numRuns: number; seed?: number; path?: string; verbose: 1 } => ({
  numRuns: runsFor(backend),
  ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}),
  ...(process.env.FC_PATH ? { path: process.env.FC_PATH } : {}),
  verbose: 1 as const
})

// arbitraries of commands, amounts and ids: test/support/fixtures.ts, shared with the tests

export { fc }
