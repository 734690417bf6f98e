/**
 * Baseline (a): a minimal Express + pg handler doing the seed system's POST transaction — BEGIN, insert the
 * order, insert an outbox row, COMMIT — written from that description as a yardstick, not a product.
 * Tables bench_seed_orders / bench_seed_outbox (bench/sql/seed-schema.sql). Pool of 10, like ours.
 * Usage: node --import tsx bench/servers/express.ts <port> <database url>
 */
import express from "express"
import { randomUUID } from "node:crypto"
import pg from "pg"

const port = Number(process.argv[2] ?? 3202)
const pool = new pg.Pool({ connectionString: process.argv[3], max: 10 })
const app = express()
app.use(express.json({ limit: "16kb" }))

app.post("/orders", async (req, res) => {
  const { userId, amount, currency } = req.body ?? {}
  if (typeof userId !== "string" || typeof amount !== "string" || typeof currency !== "string") {
    res.status(400).json({ error: "userId, amount and currency are required" })
    return
  }
  const id = randomUUID()
  const client = await pool.connect()
  try {
    await client.query("BEGIN")
    const { rows } = await client.query(
      `INSERT INTO bench_seed_orders (id, user_id, amount, currency, status) VALUES ($1, $2, $3, $4, 'PENDING')
       RETURNING id, user_id, amount::text, currency, status, created_at`,
      [id, userId, amount, currency]
    )
    await client.query(
      "INSERT INTO bench_seed_outbox (aggregate_id, type, payload) VALUES ($1, 'OrderCreated', $2)",
      [id, JSON.stringify(rows[0])]
    )
    await client.query("COMMIT")
    res.status(201).json(rows[0])
  } catch (e) {
    await client.query("ROLLBACK").catch(() => undefined)
    res.status(500).json({ error: String(e) })
  } finally {
    client.release()
  }
})

app.listen(port, "127.0.0.1")
