/**
 * Faults on the role processes (families kill, pause and term): kill -9 and restart after a while, SIGSTOP
 * and SIGCONT after a while, SIGTERM with a deadline (the result is kept for the checker) and restart.
 */
import type { Nemesis } from "../nemesis.js"
import { type FaultOf, TERM_DEADLINE_MS } from "../schedule.js"

export const injectKill = (n: Nemesis, f: FaultOf<"kill">, desc: string): void => {
  const role = n.roles.get(f.role)!
  if (!role.alive) return n.timeline("skip", `${desc}: ${f.role} is down already`)
  n.count("kill")
  if (f.role.startsWith("api")) n.lastApiDisruption = Date.now()
  role.kill9()
  const window = n.openWindow("kill", f.role)
  n.timeline("fault", desc)
  n.after(f.downMs, () => {
    if (f.role.startsWith("api")) n.lastApiDisruption = Date.now()
    role.restart()
    n.closeWindow(window)
    n.timeline("heal", `${f.role} restarted (pid ${role.pid})`)
    if (f.role === "provider") n.track(new Promise((r) => setTimeout(r, 2500)).then(() => n.putProvider()))
  })
}

export const injectPause = (n: Nemesis, f: FaultOf<"pause">, desc: string): void => {
  const role = n.roles.get(f.role)!
  if (!role.pause()) return n.timeline("skip", `${desc}: ${f.role} is down or paused already`)
  n.count("pause")
  if (f.role.startsWith("api")) n.lastApiDisruption = Date.now()
  const window = n.openWindow("pause", f.role)
  n.timeline("fault", desc)
  n.after(f.ms, () => {
    role.resume()
    n.closeWindow(window)
    if (f.role.startsWith("api")) n.lastApiDisruption = Date.now()
    n.timeline("heal", `SIGCONT ${f.role}`)
  })
}

export const injectTerm = async (n: Nemesis, f: FaultOf<"term">, desc: string): Promise<void> => {
  const role = n.roles.get(f.role)!
  if (!role.alive) return n.timeline("skip", `${desc}: ${f.role} is down already`)
  n.count("term")
  if (f.role.startsWith("api")) n.lastApiDisruption = Date.now()
  const window = n.openWindow("term", f.role)
  n.timeline("fault", desc)
  const at = Date.now()
  const result = await role.term(TERM_DEADLINE_MS)
  n.termResults.push({ role: f.role, exitedInMs: result.exitedInMs, at })
  n.timeline(
    result.exitedInMs === null ? "finding" : "note",
    result.exitedInMs === null
      ? `${f.role} did NOT exit within ${TERM_DEADLINE_MS} ms of SIGTERM: killed -9`
      : `${f.role} exited ${result.exitedInMs} ms after SIGTERM (code ${result.code})`
  )
  role.restart()
  n.closeWindow(window)
  if (f.role.startsWith("api")) n.lastApiDisruption = Date.now()
  n.timeline("heal", `${f.role} restarted (pid ${role.pid})`)
  if (f.role === "provider") await new Promise((r) => setTimeout(r, 2500)).then(() => n.putProvider())
}
