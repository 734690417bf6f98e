/** Issue 13: the generated OpenAPI document is complete — an example for every error it may answer, every
 * operation summarised and described, tags described, servers and license set. */
import { describe, expect, it } from "@effect/vitest"
import { OpenApi } from "@effect/platform"
import { Api } from "../src/http/Api.js"
import { errorsWithoutExample } from "../src/http/ErrorExamples.js"

const spec = () => OpenApi.fromApi(Api) as unknown as Record<string, any>

describe("OpenAPI document", () => {
  it("has an example of every error on every 4xx/5xx response", () => {
    const doc = spec()
    expect(errorsWithoutExample(doc)).toEqual([])
    const responses = Object.values<any>(doc.paths).flatMap((ops) =>
      Object.values<any>(ops).flatMap((op) => Object.entries<any>(op.responses).filter(([status]) => Number(status) >= 400))
    )
    // 17 operations, each with at least the 500 and 503 of the failure middleware
    expect(responses.length).toBeGreaterThanOrEqual(34)
    for (const [, response] of responses) {
      for (const [tag, example] of Object.entries<any>(response.content["application/json"].examples)) {
        expect(example.value._tag).toBe(tag)
      }
    }
  })

  it("reports an error response that lacks an example", () => {
    const doc = spec()
    delete doc.paths["/orders/{orderId}"].get.responses["404"].content["application/json"].examples.OrderVersionNotFound
    expect(errorsWithoutExample(doc)).toEqual(["GET /orders/{orderId} 404 application/json OrderVersionNotFound"])
  })

  it("describes every operation and tag, and names its servers and license", () => {
    const doc = spec()
    for (const [path, ops] of Object.entries<any>(doc.paths)) {
      for (const [method, op] of Object.entries<any>(ops)) {
        expect(op.summary, `${method} ${path}`).toBeTruthy()
        expect(op.description, `${method} ${path}`).toBeTruthy()
      }
    }
    for (const tag of doc.tags) expect(tag.description, tag.name).toBeTruthy()
    expect(doc.servers.length).toBeGreaterThan(0)
    expect(doc.info.license.name).toBeTruthy()
  })
})
