/**
 * The webhook endpoints admin API (issue 20) against the api role on the real PostgreSQL: register (the secret
 * shown once, never listed), the URL and event-type refusals (422) with private URLs refused and then allowed by
 * WEBHOOK_ALLOW_PRIVATE_URLS, hostile bodies (400, never 500), the bearer token, disable/enable, secret rotation,
 * an endpoint's deliveries paged by cursor, replays of one delivery and of all since a time, 404s, 503s when the
 * database refuses; and the CLI's `webhooks` commands on the same database.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { uuidv4, uuidv7 } from "../src/Ids.js"
import { adminToken, call, TestApp } from "./support/TestApp.js"
import { baseUrl as databaseBaseUrl } from "./support/TestDatabase.js"
import { kafkaBrokers } from "./support/TestKafka.js"
import { refuseRows } from "./support/refuseRows.js"

const auth = { authorization: `Bearer ${adminToken}` }
const admin = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
  call(method, path, {
    headers: { ...auth, ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) })
  })

const create = (body: unknown) => admin("POST", "/admin/webhook-endpoints", body)

/** Register an endpoint (201 asserted); its view with the secret. */
const registered = (body: Record<string, unknown> = { url: "https://merchant.example/hooks" }) =>
  Effect.map(create(body), (r) => {
    assert.strictEqual(r.status, 201, JSON.stringify(r.body))
    return r.body as Record<string, any>
  })

const endpointCount = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ n: number }>`SELECT count(*)::int AS n FROM webhook_endpoints`).pipe(Effect.map((rows) => rows[0]!.n), Effect.orDie)

/** A delivery row as the notifier would write it, made `agoSeconds` ago. */
const insertDelivery = (
  endpointId: string,
  row: { status: "pending" | "delivered" | "failed"; agoSeconds: number; attempts?: number; version?: number }
) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => {
    const id = uuidv7()
    return sql`
      INSERT INTO webhook_deliveries (id, endpoint_id, event_id, order_id, version, event_type, body, event_recorded_at,
        status, attempts, last_attempt_at, last_status, last_error, delivered_at, leased_until, created_at)
      VALUES (${id}, ${endpointId}, ${uuidv4()}, ${uuidv7()}, ${row.version ?? 1}, 'order.paid', '{}', now(),
        ${row.status}, ${row.attempts ?? (row.status === "pending" ? 0 : 3)},
        ${row.status === "pending" ? null : new Date()}, ${row.status === "failed" ? 500 : row.status === "delivered" ? 204 : null},
        ${row.status === "failed" ? "HTTP 500" : null}, ${row.status === "delivered" ? new Date() : null},
        ${row.status === "failed" ? new Date(Date.now() + 60_000) : null},
        now() - ${row.agoSeconds} * interval '1 second')`.pipe(Effect.as(id))
  }).pipe(Effect.orDie)

const cursorOf = (text: string) => Buffer.from(text).toString("base64url")

describe("webhook endpoints admin API", () => {
  layer(TestApp("webhook_endpoints", { WEBHOOK_ALLOW_PRIVATE_URLS: "false" }), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("register: 201 with a whsec_ secret shown once; list and get never show it", () =>
      Effect.gen(function*() {
        const created = yield* registered({
          url: "https://merchant.example/hooks#fragment",
          eventTypes: ["order.paid", "order.refund_succeeded", "order.paid"],
          description: "fulfilment"
        })
        assert.deepInclude(created, {
          url: "https://merchant.example/hooks",
          eventTypes: ["order.paid", "order.refund_succeeded"],
          description: "fulfilment",
          status: "enabled",
          disabledReason: null,
          previousSecretUntil: null,
          failingSince: null
        })
        assert.match(created.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/)
        assert.isTrue(Math.abs(Date.parse(created.createdAt) - Date.now()) < 60_000)
        assert.match(created.secret, /^whsec_[A-Za-z0-9+/]+=*$/)
        assert.isAtLeast(Buffer.from(created.secret.slice("whsec_".length), "base64").length, 24)

        const all = yield* registered({ url: "https://other.example/" })
        assert.isNull(all.eventTypes)
        assert.isNull(all.description)
        assert.notStrictEqual(all.secret, created.secret)

        const { secret: _, ...view } = created
        const got = yield* admin("GET", `/admin/webhook-endpoints/${created.id}`)
        assert.strictEqual(got.status, 200)
        assert.deepStrictEqual(got.body, view)
        // the path id in upper case is the same endpoint
        assert.deepStrictEqual((yield* admin("GET", `/admin/webhook-endpoints/${created.id.toUpperCase()}`)).body, view)
        const list = yield* admin("GET", "/admin/webhook-endpoints")
        assert.strictEqual(list.status, 200)
        const listed = (list.body as Array<Record<string, unknown>>).filter((e) => e.id === created.id || e.id === all.id)
        assert.deepStrictEqual(listed.map((e) => e.id), [created.id, all.id])
        for (const e of list.body as Array<Record<string, unknown>>) {
          assert.notProperty(e, "secret")
          assert.notInclude(JSON.stringify(e), "whsec_")
        }
        assert.notInclude(JSON.stringify(got.body), "whsec_")
      }))

    it.effect("refused registrations: unknown event types, bad or private URLs → 422; nothing written", () =>
      Effect.gen(function*() {
        const before = yield* endpointCount
        const unknown = yield* create({ url: "https://merchant.example/hooks", eventTypes: ["order.paid", "order.shipped"] })
        assert.strictEqual(unknown.status, 422)
        assert.strictEqual(unknown.body._tag, "WebhookRejected")
        assert.include(unknown.body.message, "order.shipped")
        for (
          const url of [
            "ftp://x",
            "not a url",
            "http://merchant.example/hooks", // http:// only when private URLs are allowed
            "https://user:pw@merchant.example/",
            "https://10.0.0.1/x",
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://169.254.169.254/",
            "https://192.168.1.10/hooks",
            "https://localhost/",
            "https://api.localhost/",
            `https://merchant.example/${"a".repeat(10_000)}`
          ]
        ) {
          const r = yield* create({ url })
          assert.strictEqual(r.status, 422, `${url.slice(0, 60)}: ${JSON.stringify(r.body).slice(0, 300)}`)
          assert.strictEqual(r.body._tag, "WebhookRejected")
          assert.isString(r.body.message)
        }
        assert.strictEqual(yield* endpointCount, before)
      }))

    it.effect("hostile bodies → 400/413/415, never 500; nothing written", () =>
      Effect.gen(function*() {
        const before = yield* endpointCount
        const url = "https://merchant.example/hooks"
        for (
          const body of [
            {},
            { url: 5 },
            { url: null },
            { url, extra: true },
            { url, eventTypes: [] },
            { url, eventTypes: "order.paid" },
            { url, eventTypes: [1] },
            { url, eventTypes: ["x".repeat(101)] },
            { url, description: "a\u0000b" },
            { url, description: "\ud800" },
            { url, description: "x\udc00y" },
            { url, description: "x".repeat(501) },
            { url, description: 7 },
            [],
            null,
            "https://merchant.example/hooks"
          ]
        ) {
          const r = yield* create(JSON.stringify(body))
          assert.strictEqual(r.status, 400, `${JSON.stringify(body).slice(0, 80)}: ${JSON.stringify(r.body)}`)
          assert.strictEqual(r.body._tag, "BadRequest")
        }
        for (const text of ["not json", "{\"url\":", "[".repeat(100) + "]".repeat(100), "{\"url\":\"https://merchant.example/\",\"__proto__\":{}}"]) {
          assert.strictEqual((yield* create(text)).status, 400, text.slice(0, 40))
        }
        assert.strictEqual((yield* admin("POST", "/admin/webhook-endpoints", undefined, { "content-type": "text/plain" })).status, 415)
        const big = yield* create({ url, description: "x".repeat(20_000) })
        assert.strictEqual(big.status, 413)
        assert.strictEqual((yield* admin("POST", "/admin/webhook-endpoints?x=1", { url })).status, 400)
        assert.strictEqual(yield* endpointCount, before)
      }))

    it.effect("the bearer token: none → 401, a wrong one → 403, on every route", () =>
      Effect.gen(function*() {
        const id = uuidv7()
        const routes: Array<[string, string]> = [
          ["POST", "/admin/webhook-endpoints"],
          ["GET", "/admin/webhook-endpoints"],
          ["GET", `/admin/webhook-endpoints/${id}`],
          ["POST", `/admin/webhook-endpoints/${id}/disable`],
          ["POST", `/admin/webhook-endpoints/${id}/enable`],
          ["POST", `/admin/webhook-endpoints/${id}/rotate-secret`],
          ["GET", `/admin/webhook-endpoints/${id}/deliveries`],
          ["POST", `/admin/webhook-endpoints/${id}/replay?since=2026-01-01T00:00:00Z`],
          ["POST", `/admin/webhook-deliveries/${id}/replay`]
        ]
        const before = yield* endpointCount
        for (const [method, path] of routes) {
          const body = method === "POST" ? JSON.stringify({ url: "https://merchant.example/" }) : undefined
          const none = yield* call(method, path, { headers: { "content-type": "application/json" }, ...(body ? { body } : {}) })
          assert.strictEqual(none.status, 401, `${method} ${path}`)
          assert.strictEqual(none.body._tag, "Unauthorized")
          const wrong = yield* call(method, path, {
            headers: { "content-type": "application/json", authorization: "Bearer not-the-token" },
            ...(body ? { body } : {})
          })
          assert.strictEqual(wrong.status, 403, `${method} ${path}`)
          assert.strictEqual(wrong.body._tag, "Forbidden")
        }
        assert.strictEqual(yield* endpointCount, before)
      }))

    it.effect("disable / enable round trip", () =>
      Effect.gen(function*() {
        const endpoint = yield* registered()
        const disabled = yield* admin("POST", `/admin/webhook-endpoints/${endpoint.id}/disable`)
        assert.strictEqual(disabled.status, 200)
        assert.deepInclude(disabled.body, { id: endpoint.id, status: "disabled", disabledReason: "disabled by an operator" })
        assert.notProperty(disabled.body, "secret")
        assert.strictEqual((yield* admin("GET", `/admin/webhook-endpoints/${endpoint.id}`)).body.status, "disabled")
        // disabling twice is the same answer
        assert.strictEqual((yield* admin("POST", `/admin/webhook-endpoints/${endpoint.id}/disable`)).body.status, "disabled")
        const enabled = yield* admin("POST", `/admin/webhook-endpoints/${endpoint.id}/enable`)
        assert.strictEqual(enabled.status, 200)
        assert.deepInclude(enabled.body, { id: endpoint.id, status: "enabled", disabledReason: null, failingSince: null })
        assert.isAtLeast(Date.parse(enabled.body.updatedAt), Date.parse(endpoint.updatedAt))
        assert.strictEqual((yield* admin("GET", `/admin/webhook-endpoints/${endpoint.id}`)).body.status, "enabled")
      }))

    it.effect("rotate-secret: a new secret; the previous one signs for 24 h more", () =>
      Effect.gen(function*() {
        const endpoint = yield* registered()
        const rotated = yield* admin("POST", `/admin/webhook-endpoints/${endpoint.id}/rotate-secret`)
        assert.strictEqual(rotated.status, 200)
        assert.match(rotated.body.secret, /^whsec_/)
        assert.notStrictEqual(rotated.body.secret, endpoint.secret)
        assert.isAtLeast(Buffer.from(rotated.body.secret.slice(6), "base64").length, 24)
        const until = Date.parse(rotated.body.previousSecretUntil)
        assert.isTrue(Math.abs(until - (Date.now() + 24 * 3600_000)) < 60_000, rotated.body.previousSecretUntil)
        const got = (yield* admin("GET", `/admin/webhook-endpoints/${endpoint.id}`)).body
        assert.strictEqual(got.previousSecretUntil, rotated.body.previousSecretUntil)
        assert.notProperty(got, "secret")
        const sql = yield* SqlClient.SqlClient
        const [row] = yield* sql<{ secret: string; previous_secret: string }>`
          SELECT secret, previous_secret FROM webhook_endpoints WHERE id = ${endpoint.id}`
        assert.deepStrictEqual(row, { secret: rotated.body.secret, previous_secret: endpoint.secret })
      }))

    it.effect("an endpoint's deliveries: newest first, by status, paged by cursor (limit 2 through 5 rows); bad cursors → 422", () =>
      Effect.gen(function*() {
        const endpoint = yield* registered()
        const other = yield* registered()
        yield* insertDelivery(other.id, { status: "failed", agoSeconds: 0 })
        // newest first: 0 s, 10 s, 20 s, then two made at the same instant (ordered by id)
        const ids = [
          yield* insertDelivery(endpoint.id, { status: "delivered", agoSeconds: 0, version: 5 }),
          yield* insertDelivery(endpoint.id, { status: "failed", agoSeconds: 10, version: 4 }),
          yield* insertDelivery(endpoint.id, { status: "pending", agoSeconds: 20, version: 3 }),
          yield* insertDelivery(endpoint.id, { status: "failed", agoSeconds: 30, version: 2 }),
          yield* insertDelivery(endpoint.id, { status: "delivered", agoSeconds: 30, version: 1 })
        ]
        const sql = yield* SqlClient.SqlClient
        // the two of one instant: the larger id first
        const tie = [ids[3]!, ids[4]!].sort().reverse()
        yield* sql`UPDATE webhook_deliveries SET created_at = (SELECT created_at FROM webhook_deliveries WHERE id = ${ids[3]!}) WHERE id = ${ids[4]!}`
        const expected = [ids[0]!, ids[1]!, ids[2]!, ...tie]
        const path = `/admin/webhook-endpoints/${endpoint.id}/deliveries`

        const all = yield* admin("GET", path)
        assert.strictEqual(all.status, 200, JSON.stringify(all.body))
        assert.deepStrictEqual(all.body.deliveries.map((d: any) => d.id), expected)
        assert.isNull(all.body.nextCursor)
        const failed = all.body.deliveries.find((d: any) => d.id === ids[1])
        assert.deepInclude(failed, {
          endpointId: endpoint.id,
          version: 4,
          type: "order.paid",
          status: "failed",
          attempts: 3,
          nextAttemptAt: null,
          lastStatus: 500,
          lastError: "HTTP 500",
          deliveredAt: null
        })
        assert.isString(all.body.deliveries.find((d: any) => d.id === ids[2]).nextAttemptAt)

        const onlyFailed = yield* admin("GET", `${path}?status=failed`)
        assert.deepStrictEqual(onlyFailed.body.deliveries.map((d: any) => d.id), expected.filter((id) => id === ids[1] || id === ids[3]))

        const paged: Array<string> = []
        let cursor: string | null = null
        const pages: Array<number> = []
        do {
          const page: any = yield* admin("GET", `${path}?limit=2${cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`}`)
          assert.strictEqual(page.status, 200, JSON.stringify(page.body))
          paged.push(...page.body.deliveries.map((d: any) => d.id))
          pages.push(page.body.deliveries.length)
          cursor = page.body.nextCursor
        } while (cursor !== null && pages.length < 10)
        assert.deepStrictEqual(pages, [2, 2, 1])
        assert.deepStrictEqual(paged, expected)

        // what a page cursor looks like inside does not matter to a client: anything the API did not give is a 422
        const uuid = uuidv7()
        for (
          const bad of [
            "garbage",
            cursorOf("yesterday|" + uuid),
            cursorOf("1|" + uuid), // Date.parse takes "1"; PostgreSQL does not
            cursorOf("2026-02-31 00:00:00+00|" + uuid),
            cursorOf("2026-01-01 25:00:00+00|" + uuid),
            cursorOf("2026-01-01 00:00:00+00|not-a-uuid"),
            cursorOf("2026-01-01 00:00:00+00"),
            cursorOf("\u0000|\ud800")
          ]
        ) {
          const r = yield* admin("GET", `${path}?cursor=${encodeURIComponent(bad)}`)
          assert.strictEqual(r.status, 422, `${bad}: ${JSON.stringify(r.body)}`)
          assert.strictEqual(r.body._tag, "WebhookRejected")
        }
        for (const query of ["limit=0", "limit=1001", "limit=two", "status=parked", "foo=1", `cursor=${"a".repeat(1001)}`]) {
          assert.strictEqual((yield* admin("GET", `${path}?${query}`)).status, 400, query)
        }
        const none = yield* admin("GET", `/admin/webhook-endpoints/${uuidv7()}/deliveries`)
        assert.strictEqual(none.status, 404)
        assert.strictEqual(none.body._tag, "WebhookEndpointNotFound")
      }))

    it.effect("replay of a delivery a notifier is calling right now leaves it to that call (no second call at once)", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const endpoint = yield* registered()
        const id = yield* insertDelivery(endpoint.id, { status: "pending", agoSeconds: 1 })
        yield* sql`UPDATE webhook_deliveries SET attempts = 2, leased_until = now() + interval '1 minute', lease_token = gen_random_uuid() WHERE id = ${id}`
        const replayed = yield* admin("POST", `/admin/webhook-deliveries/${id}/replay`)
        assert.strictEqual(replayed.status, 200, JSON.stringify(replayed.body))
        assert.deepInclude(replayed.body, { id, status: "pending", attempts: 2 })
        const [row] = yield* sql<{ lease_token: string | null }>`SELECT lease_token FROM webhook_deliveries WHERE id = ${id}`
        assert.isNotNull(row!.lease_token, "the call in flight keeps its lease")
      }))

    it.effect("replay: one failed delivery → pending, attempts 0; all since a time → how many", () =>
      Effect.gen(function*() {
        const endpoint = yield* registered()
        const failed = yield* insertDelivery(endpoint.id, { status: "failed", agoSeconds: 5, attempts: 7 })
        const replayed = yield* admin("POST", `/admin/webhook-deliveries/${failed}/replay`)
        assert.strictEqual(replayed.status, 200, JSON.stringify(replayed.body))
        assert.deepInclude(replayed.body, { id: failed, endpointId: endpoint.id, status: "pending", attempts: 0, deliveredAt: null })
        assert.isTrue(Math.abs(Date.parse(replayed.body.nextAttemptAt) - Date.now()) < 60_000)
        const sql = yield* SqlClient.SqlClient
        const [row] = yield* sql<{ leased_until: Date | null }>`SELECT leased_until FROM webhook_deliveries WHERE id = ${failed}`
        assert.isNull(row!.leased_until)
        const missing = yield* admin("POST", `/admin/webhook-deliveries/${uuidv7()}/replay`)
        assert.strictEqual(missing.status, 404)
        assert.strictEqual(missing.body._tag, "WebhookDeliveryNotFound")
        assert.strictEqual((yield* admin("POST", "/admin/webhook-deliveries/not-a-uuid/replay")).status, 400)

        // since an hour ago: the recent delivered and failed ones, not the pending one, not the one of two days ago
        const since = new Date(Date.now() - 3600_000).toISOString()
        const recent = [
          yield* insertDelivery(endpoint.id, { status: "delivered", agoSeconds: 60 }),
          yield* insertDelivery(endpoint.id, { status: "failed", agoSeconds: 120 })
        ]
        yield* insertDelivery(endpoint.id, { status: "pending", agoSeconds: 30 })
        const old = yield* insertDelivery(endpoint.id, { status: "delivered", agoSeconds: 2 * 86_400 })
        const replay = (query: string) => admin("POST", `/admin/webhook-endpoints/${endpoint.id}/replay${query}`)
        const all = yield* replay(`?since=${encodeURIComponent(since)}`)
        assert.strictEqual(all.status, 200, JSON.stringify(all.body))
        assert.deepStrictEqual(all.body, { replayed: 2 })
        const statuses = yield* sql<{ id: string; status: string; attempts: number }>`
          SELECT id, status, attempts FROM webhook_deliveries WHERE id IN ${sql.in([...recent, old])}`
        assert.deepStrictEqual(
          Object.fromEntries(statuses.map((r) => [r.id, `${r.status}/${r.attempts}`])),
          { [recent[0]!]: "pending/0", [recent[1]!]: "pending/0", [old]: "delivered/3" }
        )
        assert.deepStrictEqual((yield* replay(`?since=${encodeURIComponent(since)}`)).body, { replayed: 0 })
        for (const query of ["", "?since=yesterday", "?since=0000-01-01T00:00:00Z", "?since=%2B010000-01-01T00:00:00Z", `?since=${since}&x=1`]) {
          assert.strictEqual((yield* replay(query)).status, 400, query)
        }
        const unknown = yield* admin("POST", `/admin/webhook-endpoints/${uuidv7()}/replay?since=${encodeURIComponent(since)}`)
        assert.strictEqual(unknown.status, 404)
        assert.strictEqual(unknown.body._tag, "WebhookEndpointNotFound")
      }))

    it.effect("unknown endpoint ids → 404 WebhookEndpointNotFound; ids that are not UUIDs → 400", () =>
      Effect.gen(function*() {
        const id = uuidv7()
        for (
          const [method, suffix] of [
            ["GET", ""],
            ["POST", "/disable"],
            ["POST", "/enable"],
            ["POST", "/rotate-secret"],
            ["GET", "/deliveries"]
          ] as const
        ) {
          const r = yield* admin(method, `/admin/webhook-endpoints/${id}${suffix}`)
          assert.strictEqual(r.status, 404, `${method} ${suffix}`)
          assert.deepStrictEqual(r.body, { _tag: "WebhookEndpointNotFound", id, message: `webhook endpoint ${id} not found` })
          assert.strictEqual((yield* admin(method, `/admin/webhook-endpoints/not-a-uuid${suffix}`)).status, 400, `${method} ${suffix}`)
        }
      }))

    it.effect("the database refusing the write → 503 with Retry-After, never a 500", () =>
      Effect.gen(function*() {
        const endpoint = yield* registered()
        const delivery = yield* insertDelivery(endpoint.id, { status: "failed", agoSeconds: 1 })
        const outage = { name: "webhooks_outage", sqlState: "40001", message: "could not serialize access" } as const
        const restoreEndpoints = yield* refuseRows({ ...outage, table: "webhook_endpoints", on: "INSERT OR UPDATE" })
        const restoreDeliveries = yield* refuseRows({ ...outage, name: "webhook_deliveries_outage", table: "webhook_deliveries", on: "UPDATE" })
        const answers = [
          yield* create({ url: "https://merchant.example/hooks" }),
          yield* admin("POST", `/admin/webhook-endpoints/${endpoint.id}/disable`),
          yield* admin("POST", `/admin/webhook-endpoints/${endpoint.id}/rotate-secret`),
          yield* admin("POST", `/admin/webhook-deliveries/${delivery}/replay`),
          yield* admin("POST", `/admin/webhook-endpoints/${endpoint.id}/replay?since=2026-01-01T00:00:00Z`)
        ]
        yield* restoreEndpoints
        yield* restoreDeliveries
        for (const r of answers) {
          assert.strictEqual(r.status, 503, JSON.stringify(r.body))
          assert.strictEqual(r.body._tag, "ServiceUnavailable")
          assert.strictEqual(r.body.cause, "DatabaseUnavailable")
          assert.strictEqual(r.headers["retry-after"], "1")
        }
        assert.strictEqual((yield* admin("POST", `/admin/webhook-endpoints/${endpoint.id}/disable`)).status, 200)
      }))

    it.effect("the CLI: webhooks add / list / disable / enable / rotate-secret / replay on the same database; exit 1 when refused or not found", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const [{ name }] = (yield* sql<{ name: string }>`SELECT current_database() AS name`) as unknown as [{ name: string }]
        const databaseUrl = new URL(databaseBaseUrl)
        databaseUrl.pathname = `/${name}`
        const bin = fileURLToPath(new URL("../bin/orders-es", import.meta.url))
        const cli = (...args: Array<string>) =>
          Effect.async<{ code: number; out: string; err: string }>((resume) => {
            execFile(bin, args, {
              encoding: "utf8",
              env: {
                ...process.env,
                DATABASE_URL: databaseUrl.toString(),
                KAFKA_BROKERS: kafkaBrokers(),
                WEBHOOK_ALLOW_PRIVATE_URLS: "false",
                LOG_LEVEL: "Warning"
              }
            }, (error, stdout, stderr) => resume(Effect.succeed({ code: error ? (error.code as number) : 0, out: stdout, err: stderr })))
          })

        const added = yield* cli("webhooks", "add", "https://cli.example/hooks", "--type", "order.paid", "--type", "order.failed", "--description", "from the CLI")
        assert.strictEqual(added.code, 0, added.err)
        const endpoint = JSON.parse(added.out)
        assert.deepInclude(endpoint, { url: "https://cli.example/hooks", eventTypes: ["order.paid", "order.failed"], description: "from the CLI", status: "enabled" })
        assert.match(endpoint.secret, /^whsec_/)
        // the API sees it, without the secret
        const got = yield* admin("GET", `/admin/webhook-endpoints/${endpoint.id}`)
        assert.strictEqual(got.status, 200)
        assert.notProperty(got.body, "secret")

        const listed = yield* cli("webhooks", "list", "--json")
        assert.strictEqual(listed.code, 0, listed.err)
        const list = JSON.parse(listed.out) as Array<Record<string, unknown>>
        assert.include(list.map((e) => e.id), endpoint.id)
        assert.notInclude(listed.out, "whsec_")
        const text = yield* cli("webhooks", "list")
        assert.include(text.out, `${endpoint.id} enabled https://cli.example/hooks order.paid,order.failed`)

        const refusedPrivate = yield* cli("webhooks", "add", "https://10.0.0.1/x")
        assert.strictEqual(refusedPrivate.code, 1)
        assert.include(refusedPrivate.err, "private")
        const refusedType = yield* cli("webhooks", "add", "https://cli.example/hooks", "--type", "order.shipped")
        assert.strictEqual(refusedType.code, 1)
        assert.include(refusedType.err, "order.shipped")

        const disabled = yield* cli("webhooks", "disable", endpoint.id, "--json")
        assert.strictEqual(disabled.code, 0, disabled.err)
        assert.strictEqual(JSON.parse(disabled.out).status, "disabled")
        assert.strictEqual((yield* admin("GET", `/admin/webhook-endpoints/${endpoint.id}`)).body.status, "disabled")
        assert.strictEqual(JSON.parse((yield* cli("webhooks", "enable", endpoint.id, "--json")).out).status, "enabled")
        const rotated = yield* cli("webhooks", "rotate-secret", endpoint.id, "--json")
        assert.strictEqual(rotated.code, 0, rotated.err)
        assert.notStrictEqual(JSON.parse(rotated.out).secret, endpoint.secret)

        const delivery = yield* insertDelivery(endpoint.id, { status: "failed", agoSeconds: 1 })
        const replayed = yield* cli("webhooks", "replay", delivery, "--json")
        assert.strictEqual(replayed.code, 0, replayed.err)
        assert.deepInclude(JSON.parse(replayed.out), { id: delivery, status: "pending", attempts: 0 })

        const missing = yield* cli("webhooks", "disable", uuidv7())
        assert.strictEqual(missing.code, 1)
        assert.include(missing.err, "not found")
        assert.strictEqual((yield* cli("webhooks", "replay", "not-a-uuid")).code, 1)
      }), { timeout: 300_000 }) // 11 cold CLI starts (tsx)
  })

  layer(TestApp("webhook_endpoints_private", { WEBHOOK_ALLOW_PRIVATE_URLS: "true" }), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("WEBHOOK_ALLOW_PRIVATE_URLS=true: http:// and loopback addresses are registered", () =>
      Effect.gen(function*() {
        const local = yield* registered({ url: "http://127.0.0.1:9/x" })
        assert.strictEqual(local.url, "http://127.0.0.1:9/x")
        assert.strictEqual((yield* registered({ url: "https://localhost/hooks" })).url, "https://localhost/hooks")
        // still never another scheme
        assert.strictEqual((yield* create({ url: "ftp://x" })).status, 422)
      }))
  })
})
