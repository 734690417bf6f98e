/**
 * The rebuild scenario: runs bench/rebuild.ts (projection rebuild on ~1M events vs a SQL-only CREATE TABLE
 * AS, baseline c) as a process of its own and reads the result it wrote to bench/results/rebuild.json.
 */
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { here, log, root } from "../lib/common.js"

/** The rebuild scenario; its report goes to bench/results/`name`.{json,md}. */
export const runRebuild = (rebuildOrders: string, name: string) => {
  log("scenario rebuild")
  execFileSync(process.execPath, ["--import", "tsx", `${here}/rebuild.ts`, rebuildOrders], {
    cwd: root,
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, REBUILD_REPORT_NAME: name }
  })
  return JSON.parse(readFileSync(`${here}/results/${name}.json`, "utf8")) as {
    events: number
    ours: { eventsPerSecond: number }
    sqlOnlyBaseline: { eventsPerSecond: number }
    ratioToBaseline: number
  }
}

export type RebuildResult = ReturnType<typeof runRebuild>
