/**
 * The system's roles as real OS processes (`node --import tsx src/main.ts <role>`), each with its own env, its
 * stdout JSON lines captured so a test can wait for and assert on their `type`s. Every process spawned through
 * a `Processes` is SIGKILLed by `killAll` (call it in afterAll: it also runs when a test failed).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { appendFileSync, mkdirSync } from "node:fs"
import { createServer } from "node:net"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../..", import.meta.url))

/** TEST_PROCESS_LOGS=<dir>: every process's stdout and stderr also go to <dir>/<name>-<pid>.log, to read after a run. */
const logDir = process.env.TEST_PROCESS_LOGS

export interface LogLine {
  readonly type?: string
  readonly msg?: string
  readonly level?: string
  readonly [field: string]: unknown
}

/** A captured line and when the test received it (Date.now()). */
export interface Captured {
  readonly at: number
  readonly line: LogLine
}

export interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly at: number
}

export interface RoleProcess {
  readonly name: string
  readonly child: ChildProcess
  readonly lines: Array<Captured>
  readonly stderr: Array<string>
  /** Settles when the process has exited (never rejects). */
  readonly exited: Promise<Exit>
  exit: Exit | undefined
  /** Lines of these types, in order. */
  readonly ofType: (type: string) => Array<Captured>
  /** The first line (received at or after `since`) passing `pred`; rejects after `timeoutMs`. */
  readonly waitForLine: (what: string, pred: (line: LogLine) => boolean, timeoutMs: number, since?: number) => Promise<Captured>
  /** The last `n` stdout lines and stderr, for failure messages. */
  readonly tail: (n?: number) => string
}

/** A port free right now on 127.0.0.1 (the OS picks it). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Poll `poll` until `until` holds; throws with the last value after `timeoutMs`. */
export const pollUntil = async <A>(what: string, poll: () => Promise<A>, until: (a: A) => boolean, timeoutMs: number, everyMs = 200): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  let last: A
  for (;;) {
    last = await poll()
    if (until(last)) return last
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value: ${JSON.stringify(last)}`)
    await sleep(everyMs)
  }
}

export class Processes {
  readonly all: Array<RoleProcess> = []

  constructor() {
    // should the test process itself go away (a crash, a killed run), its children go with it
    process.once("exit", () => {
      for (const p of this.all) if (p.exit === undefined) p.child.kill("SIGKILL")
    })
  }

  /** Start `node --import tsx src/main.ts <role>` with the test's env on top of this process's (and the ops
   * endpoints of a process without the api on any free port, unless the test names one: OPS_PORT). */
  spawn(name: string, role: string, env: Record<string, string>): RoleProcess {
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", role], {
      cwd: root,
      env: { ...process.env, OPS_PORT: "0", ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const lines: Array<Captured> = []
    const stderr: Array<string> = []
    const file = logDir === undefined ? undefined : `${logDir}/${name}-${child.pid}.log`
    if (logDir !== undefined) mkdirSync(logDir, { recursive: true })
    const keep = (text: string) => file !== undefined && appendFileSync(file, text + "\n")
    const waiters = new Set<() => void>()
    const wake = () => waiters.forEach((w) => w())
    createInterface({ input: child.stdout! }).on("line", (text) => {
      keep(text)
      let line: LogLine
      try {
        const parsed = JSON.parse(text) as unknown
        line = typeof parsed === "object" && parsed !== null ? parsed as LogLine : { type: "TEXT", msg: text }
      } catch {
        line = { type: "TEXT", msg: text }
      }
      lines.push({ at: Date.now(), line })
      wake()
    })
    createInterface({ input: child.stderr! }).on("line", (text) => {
      keep(`stderr: ${text}`)
      stderr.push(text)
    })
    const proc: RoleProcess = {
      name,
      child,
      lines,
      stderr,
      exit: undefined,
      // the time is taken at "exit"; the promise settles at "close", once stdout is read to its end
      exited: new Promise<Exit>((resolve) => {
        let at = 0
        child.once("exit", () => at = Date.now())
        child.once("close", (code, signal) => {
          proc.exit = { code, signal, at: at || Date.now() }
          resolve(proc.exit)
          wake()
        })
      }),
      ofType: (type) => lines.filter((c) => c.line.type === type),
      waitForLine: (what, pred, timeoutMs, since = 0) =>
        new Promise<Captured>((resolve, reject) => {
          const check = () => {
            const found = lines.find((c) => c.at >= since && pred(c.line))
            if (found !== undefined) {
              done()
              resolve(found)
            } else if (proc.exit !== undefined) {
              done()
              reject(new Error(`${name} exited (${JSON.stringify(proc.exit)}) before logging ${what}\n${proc.tail()}`))
            }
          }
          const timer = setTimeout(() => {
            done()
            reject(new Error(`${name}: no ${what} within ${timeoutMs} ms\n${proc.tail()}`))
          }, timeoutMs)
          const done = () => {
            clearTimeout(timer)
            waiters.delete(check)
          }
          waiters.add(check)
          check()
        }),
      tail: (n = 40) =>
        [
          `--- ${name} (pid ${child.pid}) stdout, last ${n} lines ---`,
          ...lines.slice(-n).map((c) => JSON.stringify(c.line).slice(0, 600)),
          `--- ${name} stderr ---`,
          ...stderr.slice(-20)
        ].join("\n")
    }
    this.all.push(proc)
    return proc
  }

  /** SIGKILL whatever still runs and wait for it to be gone. */
  async killAll(): Promise<void> {
    await Promise.all(this.all.map(async (p) => {
      if (p.exit === undefined) {
        p.child.kill("SIGKILL")
        await Promise.race([p.exited, sleep(5_000)])
      }
    }))
  }

  /** Every process's tail, for a failure message. */
  tails(n = 40): string {
    return this.all.map((p) => p.tail(n)).join("\n")
  }
}
