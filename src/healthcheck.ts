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
 */
const timeoutMs = 3_000

const urls = process.argv.length > 2
  ? process.argv.slice(2)
  : [process.env.OPS_PORT || "9464", process.env.PORT || "3000"].map((port) => `http://127.0.0.1:${port}/health/ready`)

/** Nothing listens there: ask the next URL. Anything else (a timeout, a reset, a non-2xx answer) is an answer. */
const refused = (error: unknown) =>
  (error as { cause?: { code?: string } })?.cause?.code === "ECONNREFUSED"

const probe = async (): Promise<number> => {
  for (const url of urls) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
      const body = (await response.text()).slice(0, 500)
      process.stdout.write(`${url}: ${response.status} ${body}\n`)
      return response.ok ? 0 : 1
    } catch (error) {
      if (refused(error)) continue
      process.stdout.write(`${url}: ${error instanceof Error ? error.message : String(error)}\n`)
      return 1
    }
  }
  process.stdout.write(`nothing listens on ${urls.join(", ")}\n`)
  return 1
}

process.exitCode = await probe()
