// Imports the client entry point (default: the built dist/client/index.js) and fails when any server-only
// package (database, broker, server runtime, telemetry) was loaded on the way: the client must be usable
// from a process that has none of them. Usage: node scripts/client-imports.mjs [module]
// FORBIDDEN_IMPORTS (a regular expression over the resolved URLs) checks another rule on another module:
// the server loads @effect/platform module by module, never its index (test/unit/client-imports.test.ts).
import { register } from "node:module"
import { MessageChannel } from "node:worker_threads"
import { pathToFileURL } from "node:url"

const serverOnly = /\/node_modules\/(pg|pg-[^/]+|kafkajs|@effect\/(sql|sql-pg|platform-node|cluster|rpc|opentelemetry)|@opentelemetry\/[^/]+|prom-client)\//

const { port1, port2 } = new MessageChannel()
const loaded = []
port1.on("message", (url) => loaded.push(url))
port1.unref()
register(
  "data:text/javascript," + encodeURIComponent(`
    let port
    export const initialize = (data) => { port = data.port }
    export const resolve = async (specifier, context, next) => {
      const result = await next(specifier, context)
      port.postMessage(result.url)
      return result
    }`),
  { data: { port: port2 }, transferList: [port2] }
)

const target = pathToFileURL(process.argv[2] ?? "dist/client/index.js").href
await import(target)
await new Promise((resolve) => setTimeout(resolve, 100)) // the hook thread's last messages
const forbidden = process.env.FORBIDDEN_IMPORTS ? new RegExp(process.env.FORBIDDEN_IMPORTS) : serverOnly
const offending = [...new Set(loaded.filter((url) => forbidden.test(url)))]
const firstParty = new Set(loaded.filter((url) => url.startsWith(pathToFileURL(process.cwd()).href) && !url.includes("/node_modules/")))
console.log(`${target}: ${loaded.length} modules resolved, ${firstParty.size} of this project`)
if (offending.length > 0) {
  console.error(`forbidden modules loaded:\n  ${offending.join("\n  ")}`)
  process.exit(1)
}
