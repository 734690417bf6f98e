-- Tables of baselines (a) and (b): the seed system's order row and outbox row, as it wrote them per POST.
DROP TABLE IF EXISTS bench_seed_orders, bench_seed_outbox;
CREATE TABLE bench_seed_orders (
  id          uuid PRIMARY KEY,
  user_id     uuid NOT NULL,
  amount      numeric(18, 2) NOT NULL,
  currency    text NOT NULL,
  status      text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE bench_seed_outbox (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  aggregate_id  uuid NOT NULL,
  type          text NOT NULL,
  payload       jsonb NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  published     boolean NOT NULL DEFAULT false
);
CREATE INDEX bench_seed_outbox_unpublished ON bench_seed_outbox (id) WHERE NOT published;
