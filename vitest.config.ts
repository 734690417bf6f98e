import { configDefaults, defineConfig } from "vitest/config"

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
    // two tiers (README: Tests); `vitest run` runs both, `--project unit` the fast one alone
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
          exclude: [...configDefaults.exclude, "test/unit/**"],
          globalSetup: ["test/globalSetup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000
        }
      }
    ]
  }
})
