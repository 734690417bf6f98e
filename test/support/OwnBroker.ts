/**
 * A Kafka broker of a test file's own (scripts/kafka.sh on another port, with its own data directory), for tests
 * that stop, kill or pause it without disturbing the broker the other suites share. Each file picks its own port.
 */
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

const script = fileURLToPath(new URL("../../scripts/kafka.sh", import.meta.url))

export const ownBroker = (port: string) => {
  const env = { ...process.env, KAFKA_PORT: port, KAFKA_BROKERS: "", KAFKA_DATA_DIR: "" }
  const run = (command: "start" | "stop") =>
    execFileSync("bash", [script, command], { encoding: "utf8", env, stdio: ["ignore", "pipe", "inherit"] }).trim()
  /** The broker's pid, from the pid file scripts/kafka.sh keeps in its data directory. */
  const pid = () => {
    const home = process.env.KAFKA_HOME ?? `${process.env.XDG_CACHE_HOME ?? `${process.env.HOME}/.cache`}/orders-es/kafka`
    return Number(readFileSync(`${home}/run-${port}/kafka.pid`, "utf8").trim())
  }
  /** Wakes it if it is paused (SIGSTOP); nothing if it is not running. */
  const resume = () => {
    try {
      process.kill(pid(), "SIGCONT")
    } catch {
      // not started yet, or not running
    }
  }
  return {
    /** Starts it (or finds it running) and returns its bootstrap address. A broker a run aborted while it was
     * paused is woken first: the script's check only opens a connection, which a paused one accepts. */
    start: () => {
      resume()
      return run("start")
    },
    stop: () => void run("stop"),
    resume,
    pid
  }
}
