/**
 * What the checker reads from PostgreSQL after quiescence: events, orders, outbox, idempotency_keys,
 * dead_letters, the stats tables and the provider's ledgers provider_charges and provider_refunds, as one snapshot.
 */
import pg from "pg"

export interface EventRow {
  position: string
  stream_id: string
  version: number
  event_id: string
  type: string
  data: Record<string, any>
}

export const loadDatabase = async (databaseUrl: string) => {
  const client = new pg.Client({ connectionString: databaseUrl })
  client.on("error", () => undefined) // reported by the awaited query, never an uncaught event
  await client.connect()
  try {
    const q = async <R>(text: string) => (await client.query(text)).rows as Array<R>
    return {
      events: await q<EventRow>("SELECT e.position::text AS position, e.stream_id::text AS stream_id, e.version, e.event_id::text AS event_id, e.type, e.data FROM events e ORDER BY e.stream_id, e.version"),
      orders: await q<{ order_id: string; status: string; version: number; amount_minor: string; currency: string; refunded_minor?: string }>(
        "SELECT order_id::text, status, version, amount_minor::text, currency, refunded_minor::text FROM orders"
      ),
      unpublished: await q<{ position: string; stream_id: string }>("SELECT o.position::text AS position, o.stream_id::text AS stream_id FROM outbox o WHERE o.published_at IS NULL ORDER BY o.position"),
      outboxRows: Number((await q<{ n: string }>("SELECT count(*)::text AS n FROM outbox"))[0]!.n),
      keys: await q<{ key: string; status: string; response_status: number | null; response_body: any; locked_at: Date }>(
        "SELECT key, status, response_status, response_body, locked_at FROM idempotency_keys"
      ),
      charges: await q<{ idempotency_key: string; order_id: string; amount_minor: string; currency: string; outcome: string }>(
        "SELECT idempotency_key, order_id::text, amount_minor::text, currency, outcome FROM provider_charges"
      ),
      deadLetters: await q<{ id: string; topic: string; partition: number; offset: string; value_bytes: Buffer | null; status: string; error: string }>(
        "SELECT id::text, topic, partition, \"offset\", value_bytes, status, error FROM dead_letters ORDER BY id"
      ),
      statsByState: await q<{ status: string; orders: string }>("SELECT status, orders::text FROM stats_orders_by_state"),
      statsRevenue: await q<{ currency: string; day: string; paid_orders: string; revenue_minor: string; refunds?: string; refunded_minor?: string }>(
        "SELECT currency, day::text AS day, paid_orders::text, revenue_minor::text, refunds::text, refunded_minor::text FROM stats_revenue_daily"
      ),
      refunds: await q<{ idempotency_key: string; order_id: string; amount_minor: string; currency: string; outcome: string }>(
        "SELECT idempotency_key, order_id::text, amount_minor::text, currency, outcome FROM provider_refunds"
      )
    }
  } finally {
    await client.end()
  }
}
export type DatabaseSnapshot = Awaited<ReturnType<typeof loadDatabase>>
