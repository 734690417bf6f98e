/**
 * The system under test as separate OS processes: one per role instance (api ×2, relay, worker ×2, projector,
 * notifier ×2, payment-provider, webhook-receiver), each with its own log file (the suite's own Kafka broker is in broker.ts), and runCommand
 * for one-off commands. The nemesis kills, pauses and restarts them through this module; a process that
 * exits without being told to is logged on the timeline and restarted after a second, as a supervisor would.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { closeSync, openSync, writeSync } from "node:fs"
import { join } from "node:path"

export const ROOT = new URL("../../", import.meta.url).pathname

export type RoleName = "api1" | "api2" | "relay" | "worker1" | "worker2" | "projector" | "notifier1" | "notifier2" | "provider" | "receiver"
/** The processes the kill, pause and term families choose from. The webhook receiver (merchants' endpoints) is
 * not among them: its own family (receiver) takes it down. */
export const ROLE_NAMES: ReadonlyArray<RoleName> = ["api1", "api2", "relay", "worker1", "worker2", "projector", "notifier1", "notifier2", "provider"]
/** Every process of a schedule (logs, reports) */
export const PROCESS_NAMES: ReadonlyArray<RoleName> = [...ROLE_NAMES, "receiver"]

export interface RoleSpec {
  readonly name: RoleName
  readonly role: string
  readonly env: Record<string, string>
}

export type Timeline = (kind: string, detail: string) => void

/** every role process started, so that an interrupted run leaves none behind */
export const liveRoles = new Set<RoleProcess>()

export class RoleProcess {
  child: ChildProcess | null = null
  /** set while the runner itself is stopping or killing the process: its exit is expected */
  expectingExit = false
  paused = false
  restarts = 0
  unexpectedExits: Array<{ code: number | null; signal: string | null }> = []
  private autoRestart = true
  private exited: Promise<void> = Promise.resolve()

  constructor(readonly spec: RoleSpec, readonly logFile: string, private readonly timeline: Timeline) {}

  get alive(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null
  }

  get pid(): number | undefined {
    return this.child?.pid
  }

  start(): void {
    if (this.alive) return
    const fd = openSync(this.logFile, "a")
    writeSync(fd, `{"chaos":"start","role":"${this.spec.name}","at":"${new Date().toISOString()}"}\n`)
    const child = spawn(process.execPath, ["--enable-source-maps", join(ROOT, "dist/main.js"), this.spec.role], {
      cwd: ROOT,
      env: { ...process.env, ...this.spec.env },
      stdio: ["ignore", fd, fd]
    })
    closeSync(fd)
    this.child = child
    liveRoles.add(this)
    this.paused = false
    this.expectingExit = false
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        resolve()
        if (this.child !== child) return
        if (!this.expectingExit) {
          this.unexpectedExits.push({ code, signal })
          this.timeline("exit", `${this.spec.name} exited on its own (code ${code}, signal ${signal}); restarting in 1 s`)
          if (this.autoRestart) {
            setTimeout(() => {
              if (this.autoRestart && this.child === child) {
                this.restarts++
                this.start()
              }
            }, 1000)
          }
        }
      })
    })
  }

  kill9(): void {
    if (!this.alive) return
    this.expectingExit = true
    this.child!.kill("SIGKILL")
    this.paused = false
  }

  pause(): boolean {
    if (!this.alive || this.paused) return false
    this.child!.kill("SIGSTOP")
    this.paused = true
    return true
  }

  resume(): void {
    if (!this.alive || !this.paused) return
    this.child!.kill("SIGCONT")
    this.paused = false
  }

  /** SIGTERM and wait up to deadlineMs; whether it exited in time (if not, it is killed with -9). */
  async term(deadlineMs: number): Promise<{ exitedInMs: number | null; code: number | null }> {
    if (!this.alive) return { exitedInMs: 0, code: null }
    this.expectingExit = true
    if (this.paused) this.resume()
    const started = Date.now()
    const child = this.child!
    child.kill("SIGTERM")
    const inTime = await Promise.race([
      this.exited.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), deadlineMs))
    ])
    if (!inTime) {
      child.kill("SIGKILL")
      await this.exited
      return { exitedInMs: null, code: null }
    }
    return { exitedInMs: Date.now() - started, code: child.exitCode }
  }

  restart(): void {
    this.restarts++
    this.start()
  }

  /** kill -9 for good (the runner itself stopping at once): no restart follows */
  killForGood(): void {
    this.autoRestart = false
    this.expectingExit = true
    if (this.alive) this.child!.kill("SIGKILL")
  }

  /** stop for good (end of a schedule): SIGCONT, SIGTERM, then -9 after a few seconds */
  async shutdown(): Promise<void> {
    this.autoRestart = false
    if (!this.alive) return
    this.expectingExit = true
    if (this.paused) this.resume()
    this.child!.kill("SIGTERM")
    const done = await Promise.race([
      this.exited.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 5000))
    ])
    if (!done) {
      this.child!.kill("SIGKILL")
      await this.exited
    }
  }
}

const run = (cmd: string, args: ReadonlyArray<string>, env: Record<string, string>, timeoutMs = 120_000) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(cmd, [...args], { cwd: ROOT, env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr })
    })
  })
export { run as runCommand }
