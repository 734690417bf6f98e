/**
 * The processes a scenario measures: starting a server and waiting until it answers, stopping it, and the CPU
 * probes (PostgreSQL, the Kafka JVM, the load generator itself) read before and after each step.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdirSync, openSync } from "node:fs"
import type pg from "pg"
import { here, orderBody, root, sleep } from "./common.js"
import { parentOf, pidsMatching, treeCpuSeconds } from "./procstat.js"

export interface Server {
  readonly child: ChildProcess
  readonly url: string
  /** Every API process of the scenario (the `scale` layout has two): the load is shared between them. */
  readonly urls?: ReadonlyArray<string>
}

/** Starts `node <args>` (TypeScript entry points get tsx) and waits until `ready` answers 2xx. */
export const startServer = async (name: string, args: Array<string>, env: Record<string, string>, ready: string, node = process.execPath): Promise<Server> => {
  mkdirSync(`${here}/results/logs`, { recursive: true })
  const out = openSync(`${here}/results/logs/${name}.log`, "w")
  const child = spawn(node, [...(args.some((a) => a.endsWith(".ts")) ? ["--import", "tsx"] : []), ...args], {
    cwd: root,
    // a process without the api serves health and metrics on OPS_PORT: any free port, as several run side by side
    env: { ...process.env, OPS_PORT: "0", ...env },
    stdio: ["ignore", out, out]
  })
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}: see bench/results/logs/${name}.log`)
    const probe: RequestInit = ready.endsWith("/orders")
      ? { method: "POST", headers: { "content-type": "application/json" }, body: orderBody(0) }
      : {}
    const answer = await fetch(ready, probe).then((r) => r.status).catch(() => 0)
    if (answer >= 200 && answer < 300) return { child, url: new URL(ready).origin }
    await sleep(100)
  }
  throw new Error(`${name} did not become ready`)
}

export const stopServer = async (server: Server) => {
  server.child.kill("SIGTERM")
  for (let i = 0; i < 100 && server.child.exitCode === null; i++) await sleep(100)
  if (server.child.exitCode === null) server.child.kill("SIGKILL")
}

export interface CpuProbe {
  readonly name: string
  readonly read: () => number
}

export const postgresProbe = async (pool: pg.Pool): Promise<CpuProbe> => {
  const { rows } = await pool.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")
  const postmaster = parentOf(rows[0]!.pid)!
  return { name: "postgresql", read: () => treeCpuSeconds(postmaster) }
}

/** The broker at `brokers` (host:port): with several on the machine (another checkout's tests run their own),
 * the one whose run directory is named after the port (scripts/kafka.sh), else the only one. */
export const kafkaProbe = (brokers: string): CpuProbe | undefined => {
  const port = brokers.split(",")[0]?.split(":").pop() ?? ""
  const all = pidsMatching("kafka.Kafka")
  const pid = all.length === 1 ? all[0] : pidsMatching(`run-${port}/`).find((p) => all.includes(p))
  return pid === undefined ? undefined : { name: "kafka", read: () => treeCpuSeconds(pid) }
}

export const selfProbe: CpuProbe = {
  name: "load generator",
  read: () => {
    const u = process.cpuUsage()
    return (u.user + u.system) / 1e6
  }
}

export const sampleCpu = (probes: ReadonlyArray<CpuProbe>) => Object.fromEntries(probes.map((p) => [p.name, p.read()]))
