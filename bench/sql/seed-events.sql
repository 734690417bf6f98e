-- Seed :orders orders of three events each (OrderPlaced, PaymentRequested, OrderPaid) straight into the log,
-- shaped exactly as the app writes them. For benchmarks of the rebuild; never run against real data.
WITH o AS (
  SELECT i,
         overlay(overlay(md5(i::text || 'order') placing '4' from 13) placing '8' from 17)::uuid AS order_id,
         overlay(overlay(md5(i::text || 'user') placing '4' from 13) placing '8' from 17)::uuid AS user_id,
         overlay(overlay(md5(i::text || 'pay') placing '4' from 13) placing '8' from 17)::uuid AS payment_id,
         (100 + i % 100000)::text AS minor,
         to_char(timestamptz '2026-01-01' + i * interval '1 second', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at
  FROM generate_series(1, :orders) AS i
), e AS (
  SELECT o.order_id AS stream_id, v.version, v.type, v.data
  FROM o, LATERAL (VALUES
    (1, 'OrderPlaced', jsonb_build_object('_tag', 'OrderPlaced',
        'eventId', overlay(overlay(md5(o.i::text || 'e1') placing '4' from 13) placing '8' from 17)::uuid,
        'orderId', o.order_id, 'userId', o.user_id,
        'amount', jsonb_build_object('minor', o.minor, 'currency', 'EUR'), 'occurredAt', o.at)),
    (2, 'PaymentRequested', jsonb_build_object('_tag', 'PaymentRequested',
        'eventId', overlay(overlay(md5(o.i::text || 'e2') placing '4' from 13) placing '8' from 17)::uuid,
        'orderId', o.order_id, 'paymentId', o.payment_id, 'occurredAt', o.at)),
    (3, 'OrderPaid', jsonb_build_object('_tag', 'OrderPaid',
        'eventId', overlay(overlay(md5(o.i::text || 'e3') placing '4' from 13) placing '8' from 17)::uuid,
        'orderId', o.order_id, 'paymentId', o.payment_id, 'occurredAt', o.at))
  ) AS v(version, type, data)
)
INSERT INTO events (stream_id, version, event_id, type, schema_version, data)
SELECT stream_id, version, (data->>'eventId')::uuid, type, 1, data FROM e ORDER BY stream_id, version;
