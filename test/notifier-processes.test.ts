/**
 * The notifier role as real OS processes (issue 20): two notifiers in one consumer group, one killed -9 while it
 * delivers, the webhook receiver simulator (a process of its own, verifying every signature with the
 * `standardwebhooks` package). Nothing is lost: every event of every order is delivered (the survivor takes the
 * dead one's partitions from Kafka and its leased deliveries once their lease expires), every receipt's signature
 * is valid, and each order's events first arrive in version order.
 */
import { afterAll, afterEach, assert, describe, it } from "vitest"
import { newSecret } from "../src/webhooks/Signature.js"
import { freePort, pollUntil, sleep } from "./support/Processes.js"
import { placeOrders, startSystem, STARTUP_MS, stopAll, stopProcesses, TEST_MS, withTails } from "./support/WorkerSystem.js"

afterEach(stopProcesses)
afterAll(stopAll)

describe("notifier roles as separate processes", () => {
  it("two notifiers in one group, one killed -9 mid-run: every event delivered, signed, in order per order", () =>
    withTails(async () => {
      const system = await startSystem("notifier_kill", ["worker"], {})
      const receiverPort = await freePort()
      const receiver = system.spawn("receiver", "webhook-receiver", { RECEIVER_PORT: String(receiverPort), RECEIVER_HOST: "127.0.0.1" })
      await receiver.waitForLine("receiver STARTUP", (l) => l.type === "STARTUP" && l.role === "webhook-receiver", STARTUP_MS)
      const receiverUrl = `http://127.0.0.1:${receiverPort}`
      const secret = newSecret()
      const control = await fetch(`${receiverUrl}/control/kill`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ secrets: [secret], latencyMs: 20 })
      })
      assert.strictEqual(control.status, 200)
      await system.sql((sql) =>
        sql`INSERT INTO webhook_endpoints (id, url, secret) VALUES (gen_random_uuid(), ${`${receiverUrl}/hooks/kill`}, ${secret}) RETURNING id`)

      const notifierEnv = { NOTIFIER_GROUP: `notifier-${Date.now()}`, WEBHOOK_TIMEOUT_MS: "2000", WEBHOOK_RETRY_SCHEDULE: "0,200ms,500ms,1s,1s,1s,2s,2s,2s,2s", WEBHOOK_POLL_MS: "100" }
      const [survivor, victim] = [system.spawn("notifier-a", "notifier", notifierEnv), system.spawn("notifier-b", "notifier", notifierEnv)]
      await Promise.all([survivor, victim].map((n) =>
        n.waitForLine("notifier STARTUP", (l) => l.type === "STARTUP" && l.role === "notifier", STARTUP_MS)))

      const total = 60
      const ids: Array<string> = []
      const place = async (n: number) => {
        for (let i = 0; i < n; i += 5) {
          ids.push(...await placeOrders(system, 5))
          await sleep(150)
        }
      }
      const firstHalf = place(total / 2)
      await pollUntil("the victim delivering", async () => victim.ofType("WEBHOOK_DELIVERED").length, (n) => n >= 5, 90_000, 50)
      victim.child.kill("SIGKILL")
      await firstHalf
      await place(total / 2)
      await victim.exited
      assert.strictEqual(victim.exit!.signal, "SIGKILL")

      // every event of every order delivered (three each: placed, payment_pending, paid)
      await pollUntil("every order PAID", () => system.states(ids), (s) => s.PAID === ids.length, 90_000, 500)
      const delivered = await pollUntil("every delivery delivered", () =>
        system.sql<{ status: string; n: number }>((sql) =>
          sql`SELECT status, count(*)::int AS n FROM webhook_deliveries WHERE order_id = ANY(${ids}::uuid[]) GROUP BY status`),
        (rows) => rows.length === 1 && rows[0]!.status === "delivered" && rows[0]!.n === ids.length * 3, 90_000, 500)
      assert.deepStrictEqual(delivered, [{ status: "delivered", n: ids.length * 3 }])

      const receipts = await system.sql<{ webhook_id: string; order_id: string; version: number; valid: boolean | null }>((sql) =>
        sql`SELECT webhook_id, order_id, version, valid FROM webhook_receipts WHERE name = 'kill' AND order_id = ANY(${ids}::text[]) ORDER BY webhook_receipts.id`)
      assert.isTrue(receipts.every((r) => r.valid === true), "every signature verifies (standardwebhooks)")
      const deliveryIds = await system.sql<{ id: string }>((sql) => sql`SELECT id::text FROM webhook_deliveries WHERE order_id = ANY(${ids}::uuid[])`)
      const received = new Set(receipts.map((r) => r.webhook_id))
      assert.deepStrictEqual(deliveryIds.filter((d) => !received.has(d.id)), [], "every delivery reached the receiver")
      // per order, the first receipt of each version comes in version order
      const firsts = new Map<string, Array<number>>()
      const seen = new Set<string>()
      for (const r of receipts) {
        if (seen.has(r.webhook_id)) continue
        seen.add(r.webhook_id)
        firsts.set(r.order_id, [...(firsts.get(r.order_id) ?? []), r.version])
      }
      const outOfOrder = [...firsts].filter(([, versions]) => versions.join() !== "1,2,3")
      assert.deepStrictEqual(outOfOrder, [], `each order's events first arrived as versions 1, 2, 3: ${JSON.stringify(outOfOrder)}`)
      console.log(JSON.stringify({ test: "notifier kill", receipts: receipts.length, deliveries: deliveryIds.length, duplicates: receipts.length - seen.size }))
    }), TEST_MS)
})
