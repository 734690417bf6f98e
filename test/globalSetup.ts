/**
 * Runs once before all suites: fails fast when PostgreSQL is not reachable, and starts (or reuses) the local
 * Kafka broker through scripts/kafka.sh — unless KAFKA_BROKERS names a cluster to use. Suites get the
 * bootstrap address with `inject("kafkaBrokers")`.
 */
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import type { TestProject } from "vitest/node"
import { databaseUrl } from "../src/Config.js"
import { reachable } from "./support/reachable.js"

declare module "vitest" {
  export interface ProvidedContext {
    kafkaBrokers: string
  }
}

export default async function setup(project: TestProject) {
  const url = new URL(databaseUrl())
  if (!(await reachable(url.hostname, Number(url.port || 5432), 3000))) {
    throw new Error(`PostgreSQL is not reachable at ${url.host}: start it (bash scripts/postgres.sh) or set DATABASE_URL`)
  }
  const script = fileURLToPath(new URL("../scripts/kafka.sh", import.meta.url))
  const brokers = execFileSync("bash", [script, "start"], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim()
  project.provide("kafkaBrokers", brokers)
}
