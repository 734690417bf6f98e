/**
 * Runs once before all suites: fails fast when PostgreSQL is not reachable, and starts (or reuses) the local
 * Kafka broker through scripts/kafka.sh — unless KAFKA_BROKERS names a cluster to use. Suites get the
 * bootstrap address with `inject("kafkaBrokers")`.
 */
import { execFileSync } from "node:child_process"
import { Socket } from "node:net"
import { fileURLToPath } from "node:url"
import type { TestProject } from "vitest/node"

declare module "vitest" {
  export interface ProvidedContext {
    kafkaBrokers: string
  }
}

const reachable = (host: string, port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = new Socket()
    socket.setTimeout(3000)
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
    socket.once("timeout", () => {
      socket.destroy()
      resolve(false)
    })
    socket.connect(port, host)
  })

export default async function setup(project: TestProject) {
  const url = new URL(process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/orders")
  if (!(await reachable(url.hostname, Number(url.port || 5432)))) {
    throw new Error(`PostgreSQL is not reachable at ${url.host}: start it (bash scripts/postgres.sh) or set DATABASE_URL`)
  }
  const script = fileURLToPath(new URL("../scripts/kafka.sh", import.meta.url))
  const brokers = execFileSync("bash", [script, "start"], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim()
  project.provide("kafkaBrokers", brokers)
}
