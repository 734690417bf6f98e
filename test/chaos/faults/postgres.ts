/**
 * Faults on PostgreSQL (families pg, pg-hang and pg-restart), all on the run's own cluster (postgres.ts):
 * pg_terminate_backend of every app connection; SIGSTOP of every backend of the schedule's database for a
 * while, then SIGCONT (a database that hangs rather than fails); a fast restart of the whole server.
 */
import pg from "pg"
import type { Nemesis } from "../nemesis.js"
import type { FaultOf } from "../schedule.js"

export const injectPgKill = async (n: Nemesis, desc: string): Promise<void> => {
  n.count("pg-kill")
  const client = new pg.Client({ connectionString: n.databaseUrl })
  client.on("error", () => undefined) // reported by the awaited query, never an uncaught event
  try {
    await client.connect()
    const r = await client.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`
    )
    n.timeline("fault", `${desc}: ${r.rowCount} terminated`)
  } finally {
    await client.end().catch(() => undefined)
  }
}

/** How often a hang looks for backends connected since it began: they are stopped too, so that the database
 * hangs as a whole (as a stalled disk would make it) rather than only for the connections open at its start. */
const RESCAN_MS = 500

export const injectPgHang = async (n: Nemesis, f: FaultOf<"pg-hang">, desc: string): Promise<void> => {
  const cluster = n.cluster
  if (!cluster) return n.timeline("skip", `${desc}: PostgreSQL is not the run's own`)
  if (n.pgHang) return n.timeline("skip", `${desc}: a hang is in progress`)
  n.pgHang = true
  n.count("pg-hang")
  const stopped = new Set<number>()
  let over = false
  const scan = async () => {
    // the cluster may be restarting (pg-restart): no backends to stop until it is back
    const pids = await cluster.backendPids(n.database).catch(() => [])
    for (const pid of pids) {
      if (over || stopped.has(pid)) continue
      stopped.add(pid)
      cluster.stopBackend(pid)
    }
  }
  const window = n.openWindow("pg-hang", null)
  await scan()
  n.timeline("fault", `${desc}: ${stopped.size} backends stopped`)
  const rescan = setInterval(() => n.track(scan()), RESCAN_MS)
  n.after(f.ms, () => {
    over = true
    clearInterval(rescan)
    cluster.continueBackends(stopped)
    n.closeWindow(window)
    n.pgHang = false
    n.timeline("heal", `SIGCONT ${stopped.size} backends of ${n.database}`)
  })
}

export const injectPgRestart = async (n: Nemesis, f: FaultOf<"pg-restart">, desc: string): Promise<void> => {
  const cluster = n.cluster
  if (!cluster) return n.timeline("skip", `${desc}: PostgreSQL is not the run's own`)
  if (n.pgRestarting) return n.timeline("skip", `${desc}: a restart is in progress`)
  n.pgRestarting = true
  n.count("pg-restart")
  const window = n.openWindow("pg-restart", null)
  n.timeline("fault", desc)
  const started = Date.now()
  try {
    await cluster.restartFast(f.downMs)
    n.timeline("heal", `PostgreSQL up again ${Date.now() - started} ms after the stop began`)
  } finally {
    n.closeWindow(window)
    n.pgRestarting = false
  }
}
