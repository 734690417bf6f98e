-- An async projection fed from the log (src/projection/StatsProjection.ts): revenue per currency per day and
-- order counts per state. Its checkpoint is written in the same transaction as its rows.
CREATE TABLE projection_checkpoints (
  name            text   PRIMARY KEY,
  transaction_id  xid8   NOT NULL DEFAULT '0'::xid8,
  position        bigint NOT NULL DEFAULT 0,
  updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE stats_order_amounts (          -- the projection's own memory: amount of each order
  order_id      uuid    PRIMARY KEY,
  amount_minor  bigint  NOT NULL,
  currency      char(3) NOT NULL
);

CREATE TABLE stats_revenue_daily (
  currency       char(3) NOT NULL,
  day            date    NOT NULL,
  paid_orders    bigint  NOT NULL DEFAULT 0,
  revenue_minor  bigint  NOT NULL DEFAULT 0,
  PRIMARY KEY (currency, day)
);

CREATE TABLE stats_orders_by_state (
  status  text   PRIMARY KEY,
  orders  bigint NOT NULL DEFAULT 0
);
