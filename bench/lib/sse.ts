/**
 * A minimal server-sent-events client for the watchers scenario: one plain HTTP GET per watcher (node:http,
 * no per-client buffering beyond the current frame), counting frames by event type until the stream ends.
 */
import { request } from "node:http"

export interface Watch {
  /** The response status (0 until the headers arrived). */
  status: number
  /** Event types received in order. */
  readonly events: Array<string>
  /** Resolves at the first event frame (or when the stream ends or fails first). */
  readonly firstEvent: Promise<void>
  /** Resolves when the stream ends, fails, or is refused. */
  readonly ended: Promise<void>
  readonly close: () => void
}

export const watch = (url: string): Watch => {
  let onFirst!: () => void
  let onEnd!: () => void
  const firstEvent = new Promise<void>((r) => (onFirst = r))
  const ended = new Promise<void>((r) => (onEnd = r))
  const finish = () => {
    onFirst()
    onEnd()
  }
  const w: Watch = { status: 0, events: [], firstEvent, ended, close: () => req.destroy() }
  const req = request(url, { headers: { accept: "text/event-stream" } }, (res) => {
    w.status = res.statusCode ?? 0
    res.setEncoding("utf8")
    let pending = ""
    res.on("data", (chunk: string) => {
      pending += chunk
      let end: number
      while ((end = pending.indexOf("\n\n")) >= 0) {
        const frame = pending.slice(0, end)
        pending = pending.slice(end + 2)
        const type = /^event: (.*)$/m.exec(frame)?.[1]
        if (type !== undefined) {
          w.events.push(type)
          onFirst()
        }
      }
    })
    res.on("end", finish).on("error", finish).on("close", finish)
  })
  req.on("error", finish)
  req.end()
  return w
}
