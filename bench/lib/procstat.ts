/**
 * CPU time and memory of processes, from /proc (Linux). CPU is user + system time in seconds; for a parent
 * whose children come and go (the PostgreSQL postmaster) the time of children that exited is added too.
 */
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"

const ticksPerSecond = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100
  } catch {
    return 100
  }
})()

const statFields = (pid: number): Array<string> | undefined => {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8")
    // the command name (field 2) may hold spaces: split after its closing parenthesis
    return text.slice(text.lastIndexOf(")") + 2).split(" ")
  } catch {
    return undefined
  }
}

/** CPU seconds of one process (user + system), optionally with its reaped children's. */
export const cpuSeconds = (pid: number, withExitedChildren = false): number => {
  const f = statFields(pid)
  if (!f) return 0
  // after the name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14)
  const own = Number(f[11]) + Number(f[12])
  const children = withExitedChildren ? Number(f[13]) + Number(f[14]) : 0
  return (own + children) / ticksPerSecond
}

export const childrenOf = (pid: number): Array<number> => {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/** A process and all its descendants, CPU seconds summed (exited children included through the parent). */
export const treeCpuSeconds = (pid: number): number =>
  cpuSeconds(pid, true) + childrenOf(pid).reduce((sum, child) => sum + treeCpuSeconds(child), 0)

const statusKb = (pid: number, field: string): number => {
  try {
    const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith(`${field}:`))
    return line ? Number(line.split(/\s+/)[1]) : 0
  } catch {
    return 0
  }
}

/** Peak resident set size (VmHWM) in MiB. */
export const peakRssMiB = (pid: number) => statusKb(pid, "VmHWM") / 1024

/** Resident set size now (VmRSS) in MiB. */
export const rssMiB = (pid: number) => statusKb(pid, "VmRSS") / 1024

/** The parent of a process (for PostgreSQL: the postmaster, as the parent of a backend's pid). */
export const parentOf = (pid: number): number | undefined => {
  const f = statFields(pid)
  return f ? Number(f[1]) : undefined
}

/** Pids whose command line contains `needle` (e.g. the Kafka broker's main class). */
export const pidsMatching = (needle: string): Array<number> => {
  try {
    return execFileSync("pgrep", ["-f", needle], { encoding: "utf8" }).trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}
