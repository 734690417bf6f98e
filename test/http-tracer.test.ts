/**
 * The platform's HTTP tracer middleware builds a span per request (URL parse, header copies, attributes); with
 * no trace exporter installed that is CPU for nothing, so the server runs it only when one is
 * (src/http/Server.ts). With one, test/tracing.test.ts reads the `http.server` spans back from Zipkin.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer, Tracer } from "effect"
import { postJson, TestApp } from "./support/TestApp.js"

const names: Array<string> = []

/** The default tracer, recording the name of every span started under it. */
const Recording = Layer.unwrapEffect(Effect.map(Effect.tracer, (inner) =>
  Layer.setTracer(Tracer.make({
    span: (name, ...rest) => {
      names.push(name)
      return inner.span(name, ...rest)
    },
    context: (f, fiber) => inner.context(f, fiber)
  }))))

describe("HTTP server tracing", () => {
  layer(TestApp("http-tracer").pipe(Layer.provide(Recording)), { excludeTestServices: true })((it) => {
    it.effect("with no exporter installed, a request builds no http.server span", () =>
      Effect.gen(function*() {
        const placed = yield* postJson("/orders", { userId: "8f0e2d0a-3f5e-4a7b-9c1d-2e3f4a5b6c7d", amount: "1.00", currency: "EUR" })
        assert.strictEqual(placed.status, 201)
        // the recorder does see the spans that are built (the SQL statements of the append)
        assert.isTrue(names.some((n) => n.startsWith("sql.")), `spans seen: ${names.join(", ")}`)
        assert.deepStrictEqual(names.filter((n) => n.startsWith("http.server")), [])
      }))
  })
})
