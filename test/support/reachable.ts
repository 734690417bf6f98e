/** Whether something accepts TCP connections at host:port within `timeoutMs` (test setup, the chaos runner). */
import { Socket } from "node:net"

export const reachable = (host: string, port: number, timeoutMs: number) =>
  new Promise<boolean>((resolve) => {
    const socket = new Socket()
    socket.setTimeout(timeoutMs)
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
    socket.once("timeout", () => {
      socket.destroy()
      resolve(false)
    })
    socket.connect(port, host)
  })
