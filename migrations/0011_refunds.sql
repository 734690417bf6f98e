-- Refunds (issue 21): the orders projection gains the refund states, the refunded total, the refunds
-- themselves (JSON, null while there are none) and the three times the payment scheduler looks for.
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN (
  'CREATED', 'PAYMENT_PENDING', 'PAID', 'FAILED', 'CANCELLED', 'PARTIALLY_REFUNDED', 'REFUNDED'));
ALTER TABLE orders
  ADD COLUMN refunded_minor       bigint      NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0 AND refunded_minor <= amount_minor),
  ADD COLUMN refunds              jsonb,
  ADD COLUMN refund_due_at        timestamptz,
  ADD COLUMN refund_waiting_since timestamptz,
  ADD COLUMN refund_parked_since  timestamptz;
CREATE INDEX orders_refund_due ON orders (refund_due_at) WHERE refund_due_at IS NOT NULL;
CREATE INDEX orders_refund_waiting ON orders (refund_waiting_since) WHERE refund_waiting_since IS NOT NULL;
CREATE INDEX orders_refund_parked ON orders (refund_parked_since, order_id) WHERE refund_parked_since IS NOT NULL;

-- The payment provider simulator's refunds ledger (an external system's): one refund per key.
CREATE TABLE provider_refunds (
  idempotency_key  text        PRIMARY KEY,
  refund_id        uuid        NOT NULL,
  order_id         uuid        NOT NULL,
  amount_minor     bigint      NOT NULL,
  currency         char(3)     NOT NULL,
  outcome          text        NOT NULL CHECK (outcome IN ('succeeded', 'refused')),
  reason           text,
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX provider_refunds_order ON provider_refunds (order_id);
CREATE INDEX IF NOT EXISTS provider_charges_created ON provider_charges (created_at);

-- The stats projection: refunded revenue per currency per day, and each order's refunded total (to count the
-- orders per state as refunds move them).
ALTER TABLE stats_order_amounts ADD COLUMN refunded_minor bigint NOT NULL DEFAULT 0;
ALTER TABLE stats_revenue_daily
  ADD COLUMN refunds        bigint NOT NULL DEFAULT 0,
  ADD COLUMN refunded_minor bigint NOT NULL DEFAULT 0;

-- Reconciliation reads the results recorded in a time window: a BRIN index on the append-only log's time
-- costs next to nothing per append. (On a large log, create it beforehand with CREATE INDEX CONCURRENTLY:
-- built here, in the migration's transaction, it holds appends while it scans the log.)
CREATE INDEX IF NOT EXISTS events_recorded_at ON events USING brin (recorded_at);
