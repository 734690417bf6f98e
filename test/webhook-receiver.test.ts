/**
 * The webhook receiver simulator (src/simulator/WebhookReceiver.ts) on a real HTTP server and a real PostgreSQL
 * record: deliveries signed by the Standard Webhooks reference library verify (also mid-rotation, with two
 * signatures), a tampered body does not (400), every request is recorded with what it was answered, and each
 * failure mode (gone, failRate, Retry-After, latency, hang) answers as its settings say.
 */
import { assert, describe, it as plain, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import { randomBytes, randomUUID } from "node:crypto"
import { Webhook } from "standardwebhooks"
import { ReceiverConfig, WebhookReceiver, WebhookReceiverLive } from "../src/simulator/WebhookReceiver.js"
import { onTestDatabase } from "./support/TestDatabase.js"

const Receiver = onTestDatabase(
  "webhook_receiver",
  WebhookReceiverLive.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["RECEIVER_PORT", "0"]])))))
)

const newSecret = () => `whsec_${randomBytes(24).toString("base64")}`
/** An endpoint name of the test's own. */
const endpoint = () => `ep_${randomBytes(6).toString("hex")}`

/** The Standard Webhooks headers of `body`, signed with each secret (space-separated, as during a rotation). */
const signed = (secrets: ReadonlyArray<string>, body: string) => {
  const id = `msg_${randomUUID()}`
  const at = new Date()
  return {
    "webhook-id": id,
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": secrets.map((s) => new Webhook(s).sign(id, at, body)).join(" ")
  }
}

/** A body as the notifier sends it (src/webhooks/Notifier.ts: the order as the API shows it, `orderId` and all). */
const event = (orderId = randomUUID(), eventId = randomUUID()) => ({
  orderId,
  eventId,
  body: JSON.stringify({
    type: "order.paid",
    timestamp: "2026-05-01T10:00:00.123Z",
    data: { order: { orderId, state: "PAID", version: 3 }, eventId, version: 3 }
  })
})

interface Answer {
  readonly status: number
  readonly retryAfter: string | null
  readonly json: any
}

const call = (url: string, init: RequestInit = {}) =>
  Effect.tryPromise(() =>
    fetch(url, init).then(async (r): Promise<Answer> => {
      const text = await r.text()
      return { status: r.status, retryAfter: r.headers.get("retry-after"), json: text === "" ? null : JSON.parse(text) }
    })
  )

const post = (base: string, name: string, body: string, headers: Record<string, string>, signal: AbortSignal | null = null) =>
  call(`${base}/hooks/${name}`, { method: "POST", body, headers: { "content-type": "application/json", ...headers }, signal })

const control = (base: string, name: string, settings: unknown) =>
  call(`${base}/control/${name}`, { method: "PUT", body: JSON.stringify(settings), headers: { "content-type": "application/json" } })

const receipts = (base: string, name: string, query = "") =>
  Effect.map(Effect.orDie(call(`${base}/hooks/${name}/received${query}`)), (a) => a.json as Array<Record<string, unknown>>)

describe("webhook receiver simulator", () => {
  layer(Receiver, { excludeTestServices: true })((it) => {
    it.effect("a delivery signed with the reference library: 200, recorded valid with what its body says", () =>
      Effect.gen(function*() {
        const { url } = yield* WebhookReceiver
        const name = endpoint()
        const secret = newSecret()
        assert.strictEqual((yield* control(url, name, { secrets: [secret] })).status, 200)
        const { body, eventId, orderId } = event()
        const headers = signed([secret], body)
        const answer = yield* post(url, name, body, headers)
        assert.strictEqual(answer.status, 200)
        assert.isTrue(answer.json.valid)
        const [receipt, ...more] = yield* receipts(url, name)
        assert.lengthOf(more, 0)
        assert.deepInclude(receipt, {
          id: answer.json.receipt,
          name,
          webhookId: headers["webhook-id"],
          webhookTimestamp: Number(headers["webhook-timestamp"]),
          eventType: "order.paid",
          orderId,
          version: 3,
          eventId,
          valid: true,
          error: null,
          answered: 200
        })
        assert.strictEqual(new Date(receipt!.eventTimestamp as string).toISOString(), "2026-05-01T10:00:00.123Z")
        assert.isAtMost(Math.abs(Date.parse(receipt!.receivedAt as string) - Date.now()), 5_000)
      }))

    it.effect("a tampered body: 400, recorded invalid with the library's reason; no secrets: unknown, answered as set", () =>
      Effect.gen(function*() {
        const { url } = yield* WebhookReceiver
        const name = endpoint()
        const secret = newSecret()
        yield* control(url, name, { secrets: [secret] })
        const { body } = event()
        const answer = yield* post(url, name, body.replace("PAID", "FAID"), signed([secret], body))
        assert.strictEqual(answer.status, 400)
        const [receipt] = yield* receipts(url, name)
        assert.include(receipt, { valid: false, answered: 400, eventType: "order.paid" })
        assert.match(receipt!.error as string, /No matching signature/)
        // signed with a secret the endpoint does not know, and unsigned: invalid as well
        assert.strictEqual((yield* post(url, name, body, signed([newSecret()], body))).status, 400)
        assert.strictEqual((yield* post(url, name, body, {})).status, 400)
        const unknown = endpoint()
        assert.strictEqual((yield* post(url, unknown, "not json at all", {})).status, 200)
        const [unchecked] = yield* receipts(url, unknown)
        assert.include(unchecked, { valid: null, error: null, answered: 200, eventType: null, orderId: null, webhookId: null })
      }))

    it.effect("two signatures (old secret, new secret) in one header verify at an endpoint that knows either one", () =>
      Effect.gen(function*() {
        const { url } = yield* WebhookReceiver
        const [old, next] = [newSecret(), newSecret()]
        const { body } = event()
        const headers = signed([old, next], body)
        assert.lengthOf(headers["webhook-signature"].split(" "), 2)
        for (const known of [old, next]) {
          const name = endpoint()
          yield* control(url, name, { secrets: [known] })
          const answer = yield* post(url, name, body, headers)
          assert.strictEqual(answer.status, 200)
          const [receipt] = yield* receipts(url, name)
          assert.include(receipt, { valid: true, answered: 200 })
        }
      }))

    it.effect("gone → 410; failRate 1 → 500; retryAfterSeconds → Retry-After on a 503, none on a 2xx", () =>
      Effect.gen(function*() {
        const { url } = yield* WebhookReceiver
        const { body } = event()
        const name = endpoint()
        assert.strictEqual((yield* control(url, name, { gone: true })).json.gone, true)
        assert.strictEqual((yield* post(url, name, body, {})).status, 410)
        yield* control(url, name, { gone: false, failRate: 1 })
        assert.strictEqual((yield* post(url, name, body, {})).status, 500)
        const settings = yield* control(url, name, { failRate: 0, status: 503, retryAfterSeconds: 7 })
        assert.deepStrictEqual(settings.json, {
          status: 503, latencyMs: 0, failRate: 0, hang: false, gone: false, retryAfterSeconds: 7, secrets: []
        })
        const unavailable = yield* post(url, name, body, {})
        assert.deepInclude(unavailable, { status: 503, retryAfter: "7" })
        yield* control(url, name, { status: 202 })
        assert.deepInclude(yield* post(url, name, body, {}), { status: 202, retryAfter: null })
        assert.deepStrictEqual((yield* receipts(url, name)).map((r) => r.answered), [410, 500, 503, 202])
      }))

    it.effect("latencyMs delays the answer", () =>
      Effect.gen(function*() {
        const { url } = yield* WebhookReceiver
        const name = endpoint()
        yield* control(url, name, { latencyMs: 400 })
        const started = Date.now()
        assert.strictEqual((yield* post(url, name, "{}", {})).status, 200)
        assert.isAtLeast(Date.now() - started, 390)
      }))

    it.effect("hang: no answer until the client gives up; recorded with answered null", () =>
      Effect.gen(function*() {
        const { url } = yield* WebhookReceiver
        const name = endpoint()
        yield* control(url, name, { hang: true })
        const started = Date.now()
        const result = yield* Effect.either(post(url, name, event().body, {}, AbortSignal.timeout(300)))
        assert.isTrue(result._tag === "Left", "the request was answered")
        assert.isAtLeast(Date.now() - started, 290)
        const [receipt] = yield* receipts(url, name)
        assert.include(receipt, { answered: null, eventType: "order.paid" })
        // a client gone during the latency got no answer either
        const slow = endpoint()
        yield* control(url, slow, { latencyMs: 5_000 })
        assert.strictEqual((yield* Effect.either(post(url, slow, "{}", {}, AbortSignal.timeout(300))))._tag, "Left")
        for (let i = 0; i < 50 && (yield* receipts(url, slow)).length === 0; i++) yield* Effect.sleep(20)
        assert.deepStrictEqual((yield* receipts(url, slow)).map((r) => r.answered), [null])
      }))

    it.effect("control: a bad body is refused (400) and changes nothing; a name outside [A-Za-z0-9_-]{1,64} is 404", () =>
      Effect.gen(function*() {
        const { url } = yield* WebhookReceiver
        const name = endpoint()
        for (
          const bad of [
            "not json",
            JSON.stringify({ failRate: 2 }),
            JSON.stringify({ status: 150 }),
            JSON.stringify({ latencyMs: 120_001 }),
            JSON.stringify({ hang: "yes" }),
            JSON.stringify({ secrets: ["not base64 !"] }),
            JSON.stringify({ failrate: 1 }),
            JSON.stringify([])
          ]
        ) {
          const answer = yield* call(`${url}/control/${name}`, { method: "PUT", body: bad, headers: { "content-type": "application/json" } })
          assert.strictEqual(answer.status, 400, bad)
        }
        const current = yield* call(`${url}/control/${name}`)
        assert.deepStrictEqual(current.json, {
          status: 200, latencyMs: 0, failRate: 0, hang: false, gone: false, retryAfterSeconds: null, secrets: []
        })
        assert.strictEqual((yield* post(url, "a.b", "{}", {})).status, 404)
        assert.strictEqual((yield* post(url, "x".repeat(65), "{}", {})).status, 404)
        assert.strictEqual((yield* call(`${url}/control/${"x".repeat(65)}`)).status, 404)
      }))

    it.effect("received: after and limit page in id order; bad paging → 400; DELETE forgets one endpoint's receipts", () =>
      Effect.gen(function*() {
        const { url } = yield* WebhookReceiver
        const [name, other] = [endpoint(), endpoint()]
        for (let i = 0; i < 5; i++) yield* post(url, name, "{}", {})
        yield* post(url, other, "{}", {})
        const all = (yield* receipts(url, name)).map((r) => r.id as number)
        assert.lengthOf(all, 5)
        assert.deepStrictEqual(all, [...all].sort((a, b) => a - b))
        assert.deepStrictEqual((yield* receipts(url, name, `?after=${all[1]}&limit=2`)).map((r) => r.id), all.slice(2, 4))
        for (const query of ["?limit=0", "?limit=10001", "?after=-1", "?after=x"]) {
          assert.strictEqual((yield* call(`${url}/hooks/${name}/received${query}`)).status, 400, query)
        }
        assert.strictEqual((yield* call(`${url}/hooks/${name}/received`, { method: "DELETE" })).status, 204)
        assert.lengthOf(yield* receipts(url, name), 0)
        assert.lengthOf(yield* receipts(url, other), 1)
      }))
  })

  // the chaos runner kills the receiver and starts it again: its endpoints' secrets come with it (RECEIVER_ENDPOINTS)
  const startupSecret = newSecret()
  const Started = onTestDatabase(
    "webhook_receiver_startup",
    WebhookReceiverLive.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([
      ["RECEIVER_PORT", "0"],
      ["RECEIVER_ENDPOINTS", JSON.stringify({ merchant: { secrets: [startupSecret] }, flaky: { failRate: 1 } })]
    ])))))
  )
  layer(Started, { excludeTestServices: true })((it) => {
    it.effect("RECEIVER_ENDPOINTS: endpoints verify and answer as given from their first request, the others as the defaults", () =>
      Effect.gen(function*() {
        const { url } = yield* WebhookReceiver
        const { body } = event()
        assert.strictEqual((yield* post(url, "merchant", body, signed([startupSecret], body))).status, 200)
        assert.include((yield* receipts(url, "merchant"))[0], { valid: true, answered: 200 })
        assert.strictEqual((yield* post(url, "merchant", body, signed([newSecret()], body))).status, 400)
        assert.strictEqual((yield* post(url, "flaky", body, {})).status, 500)
        assert.deepStrictEqual((yield* call(`${url}/control/flaky`)).json, {
          status: 200, latencyMs: 0, failRate: 1, hang: false, gone: false, retryAfterSeconds: null, secrets: []
        })
        assert.strictEqual((yield* post(url, endpoint(), body, {})).status, 200)
      }))
  })

  plain.effect("RECEIVER_ENDPOINTS: a value that is not settings by endpoint name is refused at startup", () =>
    Effect.gen(function*() {
      for (const bad of ["not json", "[]", JSON.stringify({ "a.b": {} }), JSON.stringify({ a: { secrets: ["not base64 !"] } }), JSON.stringify({ a: { colour: 1 } })]) {
        const result = yield* Effect.either(Effect.withConfigProvider(ReceiverConfig, ConfigProvider.fromMap(new Map([["RECEIVER_ENDPOINTS", bad]]))))
        assert.strictEqual(result._tag, "Left", bad)
      }
      const good = yield* Effect.withConfigProvider(ReceiverConfig, ConfigProvider.fromMap(new Map([["RECEIVER_ENDPOINTS", JSON.stringify({ a: { latencyMs: 5 } })]])))
      assert.strictEqual(good.endpoints.get("a")?.latencyMs, 5)
      assert.strictEqual(good.endpoints.get("a")?.status, 200)
    }))
})
