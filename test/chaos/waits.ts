/**
 * Waiting on the system under test: a PostgreSQL client for a few queries, polling until something answers
 * (a role's health endpoint, the topics), and the quiescence wait after healing — every order terminal,
 * the outbox empty, the stats projector caught up, the notifiers through the topic and no webhook delivery
 * pending — within the liveness bound.
 */
import pg from "pg"
import type { Timeline } from "./procs.js"

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export const withClient = async <A>(url: string, f: (c: pg.Client) => Promise<A>): Promise<A> => {
  const c = new pg.Client({ connectionString: url })
  c.on("error", () => undefined) // a restart under it: reported by the awaited query, never an uncaught event
  await c.connect()
  try {
    return await f(c)
  } finally {
    await c.end().catch(() => undefined)
  }
}

export const waitFor = async (what: string, deadlineMs: number, probe: () => Promise<boolean>) => {
  const until = Date.now() + deadlineMs
  while (Date.now() < until) {
    if (await probe().catch(() => false)) return
    await sleep(500)
  }
  throw new Error(`timed out waiting for ${what}`)
}

export const answers = (url: string) => async () => (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok

/** The notifier's part of quiescence: how many messages of the events topic its group has still to consume
 * (an event nobody subscribed to leaves no inbox row, so the topic's offsets, not the inbox, say it is done). */
export type NotifierLag = () => Promise<number>

/** Probe every second from healedAt until the system is quiescent or boundS seconds have passed; `open` is what
 * the last probe found still open (its counts), when the bound passed first. */
export const awaitQuiescence = async (databaseUrl: string, healedAt: number, boundS: number, note: Timeline, notifierLag: NotifierLag | null = null) => {
  let reached = false
  let probeError = false
  let open: Record<string, number> | null = null
  /** when the orders, the outbox and the stats were done (the webhook deliveries may take longer) */
  let ordersDoneAt: number | null = null
  const boundMs = boundS * 1000
  while (Date.now() - healedAt < boundMs) {
    const done = await withClient(databaseUrl, async (c) => {
      // the lag first: the notifiers commit an offset after writing its deliveries, so none is missed below
      const lag = notifierLag === null ? 0 : await notifierLag().catch(() => -1)
      const r = await c.query(`SELECT
          (SELECT count(*) FROM orders WHERE status NOT IN ('PAID','FAILED','CANCELLED','PARTIALLY_REFUNDED','REFUNDED')
              OR refund_due_at IS NOT NULL OR refund_waiting_since IS NOT NULL)::int AS open,
          (SELECT count(*) FROM outbox WHERE published_at IS NULL)::int AS unpublished,
          (SELECT count(*) FROM events e WHERE (e.transaction_id, e.position) >
             (SELECT transaction_id, position FROM projection_checkpoints WHERE name = 'stats'))::int AS behind,
          (SELECT count(*) FROM projection_checkpoints)::int AS checkpoints,
          (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending')::int AS "deliveriesPending"`)
      const row = { ...r.rows[0], notifierLag: lag }
      open = row
      if (row.open === 0 && row.unpublished === 0 && (row.behind ?? 1) === 0 && row.checkpoints > 0) ordersDoneAt ??= Date.now()
      else ordersDoneAt = null
      return row.open === 0 && row.unpublished === 0 && (row.behind ?? 1) === 0 && row.checkpoints > 0 &&
        row.notifierLag === 0 && row.deliveriesPending === 0
    }).catch((e) => {
      if (!probeError) note("note", `quiescence probe failed: ${String(e).slice(0, 200)}`)
      probeError = true
      return false
    })
    if (done) {
      reached = true
      break
    }
    await sleep(1000)
  }
  return {
    reached,
    seconds: (Date.now() - healedAt) / 1000,
    boundSeconds: boundS,
    ordersSeconds: ordersDoneAt === null ? null : (ordersDoneAt - healedAt) / 1000,
    open: reached ? null : open
  }
}
