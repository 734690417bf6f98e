/**
 * The rebuild scenario: runs bench/rebuild.ts (projection rebuild on ~1M events vs a SQL-only CREATE TABLE
 * AS, baseline c) as a process of its own and reads the result it wrote to bench/results/rebuild.json.
 */
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { here, log, root } from "../lib/common.js"

export const runRebuild = (rebuildOrders: string) => {
  log("scenario rebuild")
  execFileSync(process.execPath, ["--import", "tsx", `${here}/rebuild.ts`, rebuildOrders], { cwd: root, stdio: ["ignore", "inherit", "inherit"] })
  return JSON.parse(readFileSync(`${here}/results/rebuild.json`, "utf8")) as {
    events: number
    ours: { eventsPerSecond: number }
    sqlOnlyBaseline: { eventsPerSecond: number }
    ratioToBaseline: number
  }
}

export type RebuildResult = ReturnType<typeof runRebuild>
