/**
 * The run's own PostgreSQL cluster: `initdb` in a directory of its own under the temp dir, its own port and
 * socket directory, started before the first schedule and stopped and removed at the end of the run — also
 * when the runner is interrupted or fails (see main.ts) — so that the faults on PostgreSQL (pg-kill, pg-hang,
 * pg-restart) touch no other database on the machine. The server runs as the `postgres` OS user when the
 * runner is root (initdb and postgres refuse root), as the runner's user otherwise. Also what pg-hang and
 * pg-restart need: the pids of a database's backends, SIGSTOP/SIGCONT of them (every stopped pid is kept, so
 * that every exit path can continue it), and a fast restart.
 */
import { execFileSync } from "node:child_process"
import { appendFileSync, chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { runCommand } from "./procs.js"

const isRoot = process.getuid?.() === 0

/** CHAOS_PG_BIN, else the newest /usr/lib/postgresql/<version>/bin, else PATH. */
const binDir = (): string | null => {
  if (process.env.CHAOS_PG_BIN) return process.env.CHAOS_PG_BIN
  const root = "/usr/lib/postgresql"
  if (!existsSync(root)) return null
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, "bin", "initdb"))).sort((a, b) => Number(b) - Number(a))
  return versions.length ? join(root, versions[0]!, "bin") : null
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const signal = (pid: number, sig: NodeJS.Signals) => {
  try {
    process.kill(pid, sig)
  } catch {
    // gone
  }
}

export class PgCluster {
  readonly dir: string
  private readonly bin = binDir()
  /** backends SIGSTOPped by pg-hang and not continued yet */
  private readonly stopped = new Set<number>()
  private removed = false
  /** set once create() has made the directory: a directory of another run is never stopped or removed */
  private owned = false

  constructor(readonly port: number) {
    this.dir = join(tmpdir(), `orders-es-chaos-pg-${port}`)
  }

  get dataDir() {
    return join(this.dir, "data")
  }
  get logFile() {
    return join(this.dir, "postgres.log")
  }
  /** the base of the database URLs: append /<database> */
  get url() {
    return `postgres://postgres@127.0.0.1:${this.port}`
  }

  /** a PostgreSQL program, as the user that owns the cluster */
  private command(program: string, args: ReadonlyArray<string>): [string, Array<string>] {
    const path = this.bin ? join(this.bin, program) : program
    return isRoot ? ["runuser", ["-u", "postgres", "--", path, ...args]] : [path, [...args]]
  }

  private async run(program: string, args: ReadonlyArray<string>, timeoutMs = 90_000) {
    const [cmd, argv] = this.command(program, args)
    const r = await runCommand(cmd, argv, {}, timeoutMs)
    if (r.code !== 0) throw new Error(`${program} ${args.join(" ")}: exit ${r.code}: ${(r.stderr + r.stdout).slice(-1500)}`)
    return r
  }

  /** initdb and start. A directory left by a run that was killed -9 is removed first if its server is gone;
   * a live one is refused (another run on the same port, or a stray server: the message says how to stop it). */
  async create(): Promise<void> {
    if (existsSync(this.dir)) {
      const pidFile = join(this.dataDir, "postmaster.pid")
      const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, "utf8").split("\n")[0]) : NaN
      if (Number.isFinite(pid) && alive(pid)) {
        throw new Error(`a PostgreSQL server (pid ${pid}) runs in ${this.dataDir}: another chaos run on port ${this.port} ` +
          `(set CHAOS_PG_PORT), or a stray one: ${this.command("pg_ctl", ["-D", this.dataDir, "stop", "-m", "immediate"]).flat().join(" ")}`)
      }
      rmSync(this.dir, { recursive: true, force: true })
    }
    this.owned = true
    mkdirSync(join(this.dir, "sock"), { recursive: true })
    if (isRoot) {
      const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim())
      const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim())
      chownSync(this.dir, uid, gid)
      chownSync(join(this.dir, "sock"), uid, gid)
    }
    await this.run("initdb", ["-D", this.dataDir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"])
    appendFileSync(join(this.dataDir, "postgresql.conf"), [
      "",
      "# npm run chaos: a throw-away cluster (test/chaos/postgres.ts)",
      `port = ${this.port}`,
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${join(this.dir, "sock")}'`,
      "fsync = off",
      "full_page_writes = off",
      // pg-hang stops the backends of every new connection too: room for the pools' reconnects meanwhile
      "max_connections = 300",
      ""
    ].join("\n"))
    await this.start()
  }

  async start(): Promise<void> {
    await this.run("pg_ctl", ["-D", this.dataDir, "-l", this.logFile, "-w", "-t", "60", "start"])
  }

  async running(): Promise<boolean> {
    const [cmd, argv] = this.command("pg_ctl", ["-D", this.dataDir, "status"])
    return (await runCommand(cmd, argv, {}, 10_000)).code === 0
  }

  /** pg-restart: a fast shutdown (open sessions terminated, a checkpoint), down for downMs, started again */
  async restartFast(downMs: number): Promise<void> {
    await this.run("pg_ctl", ["-D", this.dataDir, "-m", "fast", "-w", "-t", "60", "stop"])
    await new Promise((r) => setTimeout(r, downMs))
    await this.ensureRunning()
  }

  /** start it if it is not running (a heal, or a restart whose start failed), up to three tries */
  async ensureRunning(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if (await this.running()) return
      try {
        return await this.start()
      } catch (e) {
        if (attempt >= 3) throw e
      }
    }
  }

  /** the client backends connected to database, read through the cluster's `postgres` database */
  async backendPids(database: string): Promise<Array<number>> {
    const c = new pg.Client({ connectionString: `${this.url}/postgres`, connectionTimeoutMillis: 2000, query_timeout: 2000 })
    // a server stopped or restarted under it emits "error" (57P01) on the client: without a listener that
    // kills the runner; the awaited query reports the failure anyway
    c.on("error", () => undefined)
    try {
      await c.connect()
      const r = await c.query("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'", [database])
      return r.rows.map((row) => Number(row.pid))
    } finally {
      await c.end().catch(() => undefined)
    }
  }

  /** pg_dump of database (plain SQL), for a failing schedule's database, which goes with the cluster */
  async dump(database: string): Promise<string> {
    return (await this.run("pg_dump", ["-h", "127.0.0.1", "-p", String(this.port), "-U", "postgres", database], 120_000)).stdout
  }

  stopBackend(pid: number): void {
    this.stopped.add(pid)
    signal(pid, "SIGSTOP")
  }

  continueBackends(pids: Iterable<number>): void {
    for (const pid of pids) {
      signal(pid, "SIGCONT")
      this.stopped.delete(pid)
    }
  }

  /** SIGCONT every backend still stopped: every exit path of the runner and every heal calls this */
  continueAll(): void {
    this.continueBackends([...this.stopped])
  }

  /** Stop the server and remove its directory, keeping its log as logCopy. Synchronous, so that it can run in
   * the runner's `exit` handler (every exit path: the end, a failure, SIGINT/SIGTERM); idempotent. */
  removeSync(logCopy?: string): void {
    if (this.removed || !this.owned) return
    this.removed = true
    this.continueAll()
    if (existsSync(join(this.dataDir, "postmaster.pid"))) {
      const [cmd, argv] = this.command("pg_ctl", ["-D", this.dataDir, "-m", "immediate", "-w", "-t", "30", "stop"])
      try {
        execFileSync(cmd, argv, { stdio: "ignore", timeout: 40_000 })
      } catch {
        // reported below if the server outlived it
      }
    }
    if (logCopy && existsSync(this.logFile)) copyFileSync(this.logFile, logCopy)
    const pidFile = join(this.dataDir, "postmaster.pid")
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, "utf8").split("\n")[0]) : NaN
    if (Number.isFinite(pid) && alive(pid)) {
      process.stderr.write(`chaos: the run's PostgreSQL (pid ${pid}, ${this.dataDir}) did not stop; left in place\n`)
      return
    }
    rmSync(this.dir, { recursive: true, force: true })
  }
}
