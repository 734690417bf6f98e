/** Writes the OpenAPI document the server serves at /docs/openapi.json (the same `OpenApi.fromApi(Api)`). */
import { OpenApi } from "@effect/platform"
import { writeFileSync } from "node:fs"
import { Api } from "../src/http/Api.js"

const out = process.argv[2] ?? "openapi.json"
writeFileSync(out, JSON.stringify(OpenApi.fromApi(Api), null, 2) + "\n")
