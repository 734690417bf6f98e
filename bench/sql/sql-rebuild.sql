-- Baseline (c) of the rebuild benchmark: the orders projection computed by SQL alone over the events.
CREATE TABLE orders_sql_baseline AS
SELECT stream_id AS order_id,
       (array_agg(data->>'userId') FILTER (WHERE type = 'OrderPlaced'))[1]::uuid AS user_id,
       (array_agg(data->'amount'->>'minor') FILTER (WHERE type = 'OrderPlaced'))[1]::bigint AS amount_minor,
       (array_agg(data->'amount'->>'currency') FILTER (WHERE type = 'OrderPlaced'))[1] AS currency,
       CASE (array_agg(type ORDER BY version DESC))[1]
         WHEN 'OrderPlaced' THEN 'CREATED' WHEN 'PaymentRequested' THEN 'PAYMENT_PENDING' WHEN 'OrderPaid' THEN 'PAID'
         WHEN 'OrderFailed' THEN 'FAILED' ELSE 'CANCELLED' END AS status,
       (array_agg(data->>'paymentId' ORDER BY version DESC) FILTER (WHERE data ? 'paymentId'))[1]::uuid AS payment_id,
       (array_agg(data->>'reason' ORDER BY version DESC) FILTER (WHERE data ? 'reason'))[1] AS reason,
       max(version) AS version,
       min((data->>'occurredAt')::timestamptz) AS created_at,
       max((data->>'occurredAt')::timestamptz) AS updated_at
FROM events
GROUP BY stream_id;
