/**
 * Reading a JSON request body so that any bytes a client sends get a 4xx (invariant 11), never a 500:
 * 415 unless `application/json` with no charset or `charset=utf-8`; 413 over the size limit; 408 when the body
 * does not arrive in time; 400 unless the bytes are valid UTF-8 and JSON nested at most `maxDepth` deep. The
 * depth is checked by a scan of the text *before* anything walks the structure (JSON nested some 2,000 deep
 * overflowed the stack of the schema decoder).
 */
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { Config, Effect } from "effect"
import { BodyTimeoutMs } from "../Config.js"
import { BadRequest, PayloadTooLarge, RequestTimeout, UnsupportedMediaType } from "./Errors.js"
import { jsonDepthExceeds } from "../JsonDepth.js"

/** Deepest nesting of arrays and objects a request body may have. Our bodies are flat: 32 is generous. */
export const MAX_JSON_DEPTH = 32

export interface BodyLimits {
  readonly bodyLimit: number
  readonly bodyTimeoutMs: number
  readonly maxDepth?: number
}

/** How the endpoints that take a JSON body read it (docs/OPERATIONS.md "Configuration"). */
export const BodyLimitsConfig = Config.all({
  /** Largest accepted request body in bytes (413 above). */
  bodyLimit: Config.integer("BODY_LIMIT").pipe(Config.withDefault(16 * 1024)),
  /** A body not fully received after this long → 408 and the connection closed (default 5 s). */
  bodyTimeoutMs: BodyTimeoutMs
})

/** A body that did not arrive in time (408): the rest is not worth waiting for, so answer and close the connection. */
export const answerLateBody = <A, E extends { readonly _tag: string }, R>(self: Effect.Effect<A, E, R>) =>
  Effect.catchIf(
    self,
    (e): e is Extract<E, RequestTimeout> => e._tag === "RequestTimeout",
    (e) => Effect.succeed(HttpServerResponse.unsafeJson(e, { status: 408, headers: { connection: "close" } }))
  )

/** `application/json`, optionally with `charset=utf-8` (any case, quoted or not); any other charset is refused. */
export const checkJsonContentType = (header: string | undefined): UnsupportedMediaType | undefined => {
  const [type, ...params] = (header ?? "").split(";")
  if (type!.trim().toLowerCase() !== "application/json") {
    return new UnsupportedMediaType({ message: "the body must be application/json" })
  }
  for (const param of params) {
    const eq = param.indexOf("=")
    if (eq < 0) continue
    if (param.slice(0, eq).trim().toLowerCase() !== "charset") continue
    const charset = param.slice(eq + 1).trim().replace(/^"(.*)"$/, "$1").toLowerCase()
    if (charset !== "utf-8" && charset !== "utf8") {
      return new UnsupportedMediaType({ message: `the body must be UTF-8 JSON; charset ${JSON.stringify(charset)} is not supported` })
    }
  }
  return undefined
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

/** Parse JSON text already read: 400 when it is not UTF-8, nested too deep, or not JSON. */
export const parseJsonBytes = (bytes: Uint8Array, maxDepth = MAX_JSON_DEPTH) =>
  Effect.suspend((): Effect.Effect<unknown, BadRequest> => {
    let text: string
    try {
      text = utf8.decode(bytes)
    } catch {
      return Effect.fail(new BadRequest({ message: "the body is not valid UTF-8" }))
    }
    if (jsonDepthExceeds(text, maxDepth)) {
      return Effect.fail(new BadRequest({ message: `the body is nested deeper than ${maxDepth} levels` }))
    }
    try {
      return Effect.succeed(JSON.parse(text) as unknown)
    } catch {
      return Effect.fail(new BadRequest({ message: "the body is not valid JSON" }))
    }
  })

/**
 * Read and parse a JSON body. Over the limit the rest of the body is left for node to discard after the
 * response (the client reads its 413), whether it declared a Content-Length or streams chunks. A body that has
 * not fully arrived after `bodyTimeoutMs` fails with 408; the caller answers it with `Connection: close`.
 */
export const readJsonBody = (request: HttpServerRequest.HttpServerRequest, limits: BodyLimits) =>
  Effect.gen(function*() {
    const unsupported = checkJsonContentType(request.headers["content-type"])
    if (unsupported !== undefined) return yield* unsupported
    const limit = limits.bodyLimit
    const tooLarge = () => new PayloadTooLarge({ message: `the body must be at most ${limit} bytes` })
    if (Number(request.headers["content-length"] ?? 0) > limit) return yield* tooLarge()
    const source = NodeHttpServerRequest.toIncomingMessage(request)
    if (source.complete && source.readableFlowing !== true) {
      // the whole body has arrived already (a small one comes with its headers): take it as it is buffered,
      // without listeners, a timer or a wait (issue 24: the api role's hottest path)
      const chunks: Array<Buffer> = []
      let size = 0
      for (let chunk: Buffer | null; (chunk = source.read() as Buffer | null) !== null;) {
        size += chunk.length
        if (size > limit) return yield* tooLarge()
        chunks.push(chunk)
      }
      return yield* parseJsonBytes(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), limits.maxDepth)
    }
    const bytes = yield* Effect.async<Buffer, PayloadTooLarge | BadRequest | RequestTimeout>((resume) => {
      const chunks: Array<Buffer> = []
      let size = 0
      // a timer of its own, not Effect.timeoutFail: that races two fibers per request on the hottest path
      const timer = setTimeout(() => {
        stop()
        resume(Effect.fail(new RequestTimeout({ message: `the body did not arrive within ${limits.bodyTimeoutMs} ms` })))
      }, limits.bodyTimeoutMs)
      const stop = () => {
        clearTimeout(timer)
        source.off("data", onData).off("end", onEnd).off("error", onError).off("aborted", onError)
      }
      const onData = (chunk: Buffer) => {
        size += chunk.length
        if (size > limit) {
          stop()
          resume(Effect.fail(tooLarge()))
        } else chunks.push(chunk)
      }
      const onEnd = () => {
        stop()
        resume(Effect.succeed(Buffer.concat(chunks)))
      }
      const onError = () => {
        stop()
        resume(Effect.fail(new BadRequest({ message: "the body could not be read" })))
      }
      source.on("data", onData).on("end", onEnd).on("error", onError).on("aborted", onError)
      return Effect.sync(stop)
    })
    return yield* parseJsonBytes(bytes, limits.maxDepth)
  })
