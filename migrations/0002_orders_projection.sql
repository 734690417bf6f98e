-- The orders projection: the fold of each order's stream, upserted in the append's transaction.
-- It can be thrown away and rebuilt from `events` at any time.
CREATE TABLE orders (
  order_id      uuid        PRIMARY KEY,
  user_id       uuid        NOT NULL,
  amount_minor  bigint      NOT NULL CHECK (amount_minor > 0),
  currency      char(3)     NOT NULL,
  status        text        NOT NULL CHECK (status IN ('CREATED', 'PAYMENT_PENDING', 'PAID', 'FAILED', 'CANCELLED')),
  payment_id    uuid,
  reason        text,
  version       integer     NOT NULL,
  created_at    timestamptz NOT NULL,
  updated_at    timestamptz NOT NULL
);
CREATE INDEX orders_status_order ON orders (status, order_id);
CREATE INDEX orders_user_order ON orders (user_id, order_id);
