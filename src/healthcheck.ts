/**
 * The container's health probe (the Dockerfile's HEALTHCHECK, `node dist/healthcheck.js [url ...]`): exit 0
 * when the process of this container answers 2xx on its readiness endpoint, 1 otherwise.
 *
 * Without URLs it asks GET /health/ready on the ops port (OPS_PORT, default 9464: a process without the api
 * role serves its health and metrics there) and, when nothing listens on that port, on the api's PORT (default
 * 3000: the api serves /health/ready itself). So one HEALTHCHECK fits every role. With URLs it asks those, in
 * the same way (the next one only when nothing listens on the previous one).
 *
 * Plain Node, no Effect: Docker runs it every interval, and a start without loading the program costs ~40 ms.
 * node:http rather than fetch, which refuses the ports of the Fetch standard's block list (6000, 10080, …).
 */
import { get } from "node:http"

const timeoutMs = 3_000

const urls = process.argv.length > 2
  ? process.argv.slice(2)
  : [process.env.OPS_PORT || "9464", process.env.PORT || "3000"].map((port) => `http://127.0.0.1:${port}/health/ready`)

/** `refused`: nothing listens there, ask the next URL. Anything else (2xx or not, a timeout, a reset) is the verdict. */
type Answer = { readonly refused: true } | { readonly refused: false; readonly ok: boolean; readonly line: string }

const ask = (url: string) =>
  new Promise<Answer>((resolve) => {
    const request = get(url, { timeout: timeoutMs }, (response) => {
      let body = ""
      response.setEncoding("utf8")
      response.on("data", (chunk: string) => {
        if (body.length < 500) body += chunk
      })
      response.on("end", () => {
        const status = response.statusCode ?? 0
        resolve({ refused: false, ok: status >= 200 && status < 300, line: `${url}: ${status} ${body.slice(0, 500)}` })
      })
      response.on("error", (error) => resolve({ refused: false, ok: false, line: `${url}: ${error.message}` }))
    })
    request.on("timeout", () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    request.on("error", (error: NodeJS.ErrnoException) =>
      resolve(error.code === "ECONNREFUSED" ? { refused: true } : { refused: false, ok: false, line: `${url}: ${error.message}` }))
  })

const probe = async (): Promise<number> => {
  for (const url of urls) {
    const answer = await ask(url)
    if (answer.refused) continue
    process.stdout.write(`${answer.line}\n`)
    return answer.ok ? 0 : 1
  }
  process.stdout.write(`nothing listens on ${urls.join(", ")}\n`)
  return 1
}

process.exitCode = await probe()
