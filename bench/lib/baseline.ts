/**
 * An earlier commit of this repository, checked out in a git worktree under bench/results/ and built, for the
 * scenarios that measure the code before a change in the same run (api-previous, previous).
 */
import { execFileSync } from "node:child_process"
import { root } from "./common.js"

/** The pipeline of an earlier commit (BENCH_BASELINE_REF), built in a worktree beside this one: the same
 * measurements of the code before a change, in the same run. */
export const baselineCheckout = (ref: string) => {
  const dir = `${root}/bench/results/baseline-${ref.replace(/[^A-Za-z0-9]/g, "_")}`
  try {
    execFileSync("git", ["worktree", "remove", "--force", dir], { cwd: root, stdio: "ignore" }) // a leftover of an earlier run
  } catch {
    // none
  }
  execFileSync("git", ["worktree", "add", "--detach", dir, ref], { cwd: root, stdio: "inherit" })
  execFileSync("ln", ["-s", `${root}/node_modules`, `${dir}/node_modules`])
  execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: dir, stdio: "inherit" })
  return {
    dir,
    remove: () => execFileSync("git", ["worktree", "remove", "--force", dir], { cwd: root, stdio: "ignore" })
  }
}
