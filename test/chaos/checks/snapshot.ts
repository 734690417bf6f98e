/**
 * What the checker reads from PostgreSQL after quiescence: events, orders, outbox, idempotency_keys,
 * dead_letters, the stats tables, the provider's ledgers provider_charges and provider_refunds, the webhook
 * endpoints and deliveries, the notifier's inbox rows and the webhook receiver's receipts, as one snapshot.
 */
import pg from "pg"

export interface EventRow {
  position: string
  stream_id: string
  version: number
  event_id: string
  type: string
  data: Record<string, any>
  recorded_at?: Date
}

/** The snapshot of the database at databaseUrl; the notifier's inbox rows are those of its group (consumer name). */
export const loadDatabase = async (databaseUrl: string, notifierGroup = "") => {
  const client = new pg.Client({ connectionString: databaseUrl })
  client.on("error", () => undefined) // reported by the awaited query, never an uncaught event
  await client.connect()
  try {
    const q = async <R>(text: string) => (await client.query(text)).rows as Array<R>
    return {
      events: await q<EventRow>("SELECT e.position::text AS position, e.stream_id::text AS stream_id, e.version, e.event_id::text AS event_id, e.type, e.data, e.recorded_at FROM events e ORDER BY e.stream_id, e.version"),
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
      ),
      webhookEndpoints: await q<{ id: string; url: string; event_types: Array<string> | null; status: string; disabled_reason: string | null; created_at: Date }>(
        "SELECT id::text, url, event_types, status, disabled_reason, created_at FROM webhook_endpoints ORDER BY created_at"
      ),
      // of the body, what the check compares with the event (the body itself stays in the database)
      webhookDeliveries: await q<{
        id: string; endpoint_id: string; event_id: string; order_id: string; version: number; event_type: string; status: string
        attempts: number; last_status: number | null; last_error: string | null
        body_type: string | null; body_event_id: string | null; body_version: number | null; body_state: string | null
      }>(
        `SELECT id::text, endpoint_id::text, event_id::text, order_id::text, version, event_type, status, attempts, last_status, last_error,
                b->>'type' AS body_type, b->'data'->>'eventId' AS body_event_id, (b->'data'->>'version')::int AS body_version,
                b->'data'->'order'->>'state' AS body_state
         FROM (SELECT *, body::jsonb AS b FROM webhook_deliveries) d ORDER BY endpoint_id, order_id, version`
      ),
      webhookReceipts: await q<{
        id: string; name: string; webhook_id: string | null; event_type: string | null; order_id: string | null; version: number | null
        event_id: string | null; valid: boolean | null; answered: number | null; received_at: Date
      }>("SELECT id::text, name, webhook_id, event_type, order_id, version, event_id, valid, answered, received_at FROM webhook_receipts ORDER BY id"),
      notifierInbox: await q<{ message_id: string; processed_at: Date }>(
        `SELECT message_id::text, processed_at FROM inbox WHERE consumer = '${notifierGroup.replace(/'/g, "''")}'`
      )
    }
  } finally {
    await client.end()
  }
}
export type DatabaseSnapshot = Awaited<ReturnType<typeof loadDatabase>>
