-- Baseline (b): the seed system's POST transaction as a pgbench custom script (same statements as (a)).
\set amount random(100, 100000)
BEGIN;
INSERT INTO bench_seed_orders (id, user_id, amount, currency, status)
  VALUES (gen_random_uuid(), gen_random_uuid(), :amount / 100.0, 'EUR', 'PENDING');
INSERT INTO bench_seed_outbox (aggregate_id, type, payload)
  VALUES (gen_random_uuid(), 'OrderCreated', jsonb_build_object('amount', :amount, 'currency', 'EUR', 'status', 'PENDING'));
COMMIT;
