/** Runs once before all suites: fails fast with a clear message when PostgreSQL is not reachable. */
import { Socket } from "node:net"

export default async function setup() {
  const url = new URL(process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/orders")
  await new Promise<void>((resolve, reject) => {
    const socket = new Socket()
    socket.setTimeout(3000)
    socket.once("connect", () => {
      socket.destroy()
      resolve()
    })
    const fail = () => {
      socket.destroy()
      reject(new Error(`PostgreSQL is not reachable at ${url.host}: start it (see README) or set DATABASE_URL`))
    }
    socket.once("error", fail)
    socket.once("timeout", fail)
    socket.connect(Number(url.port || 5432), url.hostname)
  })
}
