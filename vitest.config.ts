import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "property-tests/**/*.test.ts"],
    globalSetup: ["test/globalSetup.ts"],
    testTimeout: 60_000,
    // the system's own JSON logs: warnings and errors only, unless LOG_LEVEL says otherwise
    env: { LOG_LEVEL: process.env.LOG_LEVEL ?? "Warning" },
    // In CI also a JSON report, from which .ci/run prints one plain "N passed, N failed" line.
    reporters: process.env.CI ? ["default", "json"] : ["default"],
    outputFile: { json: ".ci/test-results.json" },
    hookTimeout: 120_000,
    // 2 cores: suites share one PostgreSQL; each uses its own database so they may run side by side.
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } }
  }
})
