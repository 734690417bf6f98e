/**
 * The floor under the notifier's CPU target (issue 20: ≤ 0.3 ms per delivered event): what one webhook-like
 * POST costs the sending process with nothing else — node's http client on a keep-alive agent, a body of our
 * size, the Standard Webhooks headers with an HMAC-SHA256 signature — sent at a steady rate to a receiver in
 * another process that answers 204. No database, no Kafka, no Effect. CPU of the sender from process.cpuUsage()
 * over 20 s after 500 requests of warm-up, at each rate of FLOOR_RATES (default 30,100,300,1000 requests/s).
 * Run: `node --import tsx bench/http-client-floor.ts`. Nothing here asserts a speed.
 */
import { fork } from "node:child_process"
import { createHmac, randomUUID } from "node:crypto"
import http from "node:http"
import { fileURLToPath } from "node:url"

const port = Number(process.env.FLOOR_PORT ?? 3298)
const seconds = 20

const receiver = () =>
  http.createServer((req, res) => {
    req.resume()
    req.on("end", () => {
      res.writeHead(204)
      res.end()
    })
  }).listen(port, "127.0.0.1", () => process.send?.("ready"))

const sender = async (rate: number) => {
  const agent = new http.Agent({ keepAlive: true })
  const secret = Buffer.from(randomUUID())
  const body = JSON.stringify({
    type: "order.paid",
    timestamp: new Date().toISOString(),
    data: {
      order: { orderId: randomUUID(), userId: randomUUID(), amount: "12.34", currency: "EUR", status: "PAID", version: 3 },
      eventId: randomUUID(),
      version: 3
    }
  })
  const post = () =>
    new Promise<void>((resolve) => {
      const id = randomUUID()
      const timestamp = String(Math.floor(Date.now() / 1000))
      const signature = createHmac("sha256", secret).update(`${id}.${timestamp}.${body}`).digest("base64")
      const request = http.request({
        host: "127.0.0.1",
        port,
        method: "POST",
        path: "/hook",
        agent,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          "webhook-id": id,
          "webhook-timestamp": timestamp,
          "webhook-signature": `v1,${signature}`
        }
      }, (response) => {
        response.resume()
        response.on("end", resolve)
      })
      request.on("error", () => resolve())
      request.end(body)
    })
  for (let i = 0; i < 500; i++) await post()
  const before = process.cpuUsage()
  const start = Date.now()
  let sent = 0
  // one tick every 10 ms (or one request per tick below 100/s), as events arrive spread over time
  const every = rate >= 100 ? 10 : 1000 / rate
  const perTick = rate >= 100 ? rate / 100 : 1
  await new Promise<void>((done) => {
    const timer = setInterval(() => {
      for (let i = 0; i < perTick; i++) {
        sent++
        void post()
      }
      if (Date.now() - start >= seconds * 1000) {
        clearInterval(timer)
        setTimeout(done, 500)
      }
    }, every)
  })
  const used = process.cpuUsage(before)
  agent.destroy()
  return { rate, sent, msPerRequest: (used.user + used.system) / 1000 / sent }
}

if (process.argv[2] === "receiver") receiver()
else {
  const child = fork(fileURLToPath(import.meta.url), ["receiver"], { execArgv: process.execArgv })
  await new Promise((ready) => child.once("message", ready))
  try {
    for (const rate of (process.env.FLOOR_RATES ?? "30,100,300,1000").split(",").map(Number)) {
      const r = await sender(rate)
      console.log(`${r.rate} requests/s: ${r.sent} sent, sender CPU ${r.msPerRequest.toFixed(3)} ms per request`)
    }
  } finally {
    child.kill()
  }
}
