/**
 * The suite's own Kafka broker: scripts/kafka.sh on its own port and data dir. The nemesis kills, pauses and
 * restarts it through this module; restarts are noted on the current schedule's timeline.
 */
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { reachable } from "../support/reachable.js"
import { runCommand, type Timeline } from "./procs.js"

/** The suite's own broker: scripts/kafka.sh with its own port and data dir (KAFKA_BROKERS must not be set). */
export class Broker {
  paused = false
  down = false
  /** where its restarts are noted: the current schedule's timeline */
  timeline: Timeline
  constructor(readonly port: number, readonly dataDir: string, timeline: Timeline) {
    this.timeline = timeline
  }

  get address(): string {
    return `127.0.0.1:${this.port}`
  }
  private get env() {
    return { KAFKA_PORT: String(this.port), KAFKA_DATA_DIR: this.dataDir, KAFKA_BROKERS: "", KAFKA_HEAP: "384m" }
  }
  get pid(): number | undefined {
    const file = join(this.dataDir, "kafka.pid")
    if (!existsSync(file)) return undefined
    const pid = Number(readFileSync(file, "utf8").trim())
    return Number.isFinite(pid) && pid > 0 ? pid : undefined
  }
  get logFile(): string {
    return join(this.dataDir, "server.log")
  }

  async start(): Promise<void> {
    const r = await runCommand("bash", ["scripts/kafka.sh", "start"], this.env)
    if (r.code !== 0) throw new Error(`broker did not start: ${r.stderr.slice(-2000)}`)
    this.down = false
    this.paused = false
  }

  kill9(): void {
    const pid = this.pid
    if (pid === undefined) return
    try {
      process.kill(pid, "SIGKILL")
    } catch {
      // already gone
    }
    this.down = true
    this.paused = false
  }

  pause(): boolean {
    const pid = this.pid
    if (pid === undefined || this.down || this.paused) return false
    process.kill(pid, "SIGSTOP")
    this.paused = true
    return true
  }

  /** SIGCONT whether or not we think it is paused: harmless when it runs, and a heal must not depend on a flag */
  resume(): void {
    const pid = this.pid
    if (pid !== undefined) {
      try {
        process.kill(pid, "SIGCONT")
      } catch {
        // gone
      }
    }
    this.paused = false
  }

  async restart(): Promise<void> {
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        await this.start()
        this.timeline("heal", `broker up again (attempt ${attempt})`)
        return
      } catch (e) {
        this.timeline("error", `broker restart attempt ${attempt} failed: ${String(e).slice(0, 300)}`)
        // kafka.sh waits 60 s; on a loaded machine the broker may still be booting: wait for it rather than
        // start a second one on the same data dir
        const pid = this.pid
        const alive = pid !== undefined && (() => {
          try {
            process.kill(pid, 0)
            return true
          } catch {
            return false
          }
        })()
        for (let i = 0; alive && i < 120; i++) {
          if (await reachable("127.0.0.1", this.port, 1000)) {
            this.down = false
            this.paused = false
            this.timeline("heal", `broker up again (${i} s after attempt ${attempt} gave up)`)
            return
          }
          await new Promise((r) => setTimeout(r, 1000))
        }
      }
    }
  }

  async stop(): Promise<void> {
    this.resume()
    await runCommand("bash", ["scripts/kafka.sh", "stop"], this.env)
  }
}
