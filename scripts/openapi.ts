/**
 * Writes the OpenAPI document the server serves at /docs/openapi.json (the same `OpenApi.fromApi(Api)`), and
 * fails when an error response lacks an example of any error it may carry (issue 13).
 */
import { OpenApi } from "@effect/platform"
import { writeFileSync } from "node:fs"
import { Api } from "../src/http/Api.js"
import { errorsWithoutExample } from "../src/http/ErrorExamples.js"

const out = process.argv[2] ?? "openapi.json"
const spec = OpenApi.fromApi(Api)
writeFileSync(out, JSON.stringify(spec, null, 2) + "\n")
const missing = errorsWithoutExample(spec)
if (missing.length > 0) {
  console.error(`error responses without an example:\n  ${missing.join("\n  ")}`)
  process.exit(1)
}
