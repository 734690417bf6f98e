/** Prometheus's own linter on a /metrics text (Debian's `prometheus` package; .ci/run installs it): exit 0 and no
 * output when clean, 3 with the problems printed, 1 when unparseable. */
import { spawnSync } from "node:child_process"

export const promtool = (text: string) => {
  const run = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" })
  if (run.error) throw new Error(`promtool is not installed (apt-get install -y prometheus): ${run.error.message}`)
  return { status: run.status, output: `${run.stdout}${run.stderr}` }
}
