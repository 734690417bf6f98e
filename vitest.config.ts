import { configDefaults, defineConfig } from "vitest/config"

/** Suites that stop the shared PostgreSQL's backends (SIGSTOP): run alone, after the others. */
const alone = ["test/pg-hang.test.ts"]

export default defineConfig({
  test: {
    // the system's own JSON logs: warnings and errors only, unless LOG_LEVEL says otherwise
    env: { LOG_LEVEL: process.env.LOG_LEVEL ?? "Warning" },
    // In CI also a JSON report, from which .ci/run prints one plain "N passed, N failed" line.
    reporters: process.env.CI ? ["default", "json"] : ["default"],
    outputFile: { json: ".ci/test-results.json" },
    // 2 cores: suites share one PostgreSQL; each uses its own database so they may run side by side.
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    // two tiers (README: Tests); `vitest run` runs both, `--project unit` the fast one alone; the suites that
    // stop PostgreSQL's backends run after the rest (`alone`)
    projects: [
      {
        extends: true,
        // TestClock, in-memory layers: no PostgreSQL, no Kafka, no global setup
        test: { name: "unit", include: ["test/unit/**/*.test.ts"], testTimeout: 10_000 }
      },
      {
        extends: true,
        test: {
          name: "integration",
          include: ["test/**/*.test.ts", "property-tests/**/*.test.ts"],
          exclude: [...configDefaults.exclude, "test/unit/**", ...alone],
          globalSetup: ["test/globalSetup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000
        }
      },
      {
        extends: true,
        // after every other suite, by itself: SIGSTOPped backends may hold a lock of the whole PostgreSQL
        // cluster (a WAL insertion lock), stalling every other suite's database meanwhile (seen: a concurrent
        // suite's requests all answered 503 during a 12 s hang)
        test: {
          name: "alone",
          include: alone,
          globalSetup: ["test/globalSetup.ts"],
          sequence: { groupOrder: 1 },
          testTimeout: 60_000,
          hookTimeout: 120_000
        }
      }
    ]
  }
})
