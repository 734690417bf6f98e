-- Dead letters keep the exact bytes of what was parked (any bytes: NUL, invalid UTF-8, a tombstone), so that
-- parking can never fail on content and a replay sends the original message. `value`, `message_key` and
-- `headers` stay as printable previews for operators.
ALTER TABLE dead_letters
  ADD COLUMN value_bytes  bytea,                       -- NULL: the message had no value (tombstone)
  ADD COLUMN key_bytes    bytea,                       -- NULL: the message had no key
  ADD COLUMN header_bytes jsonb NOT NULL DEFAULT '[]'; -- [[base64 name, base64 value], ...] in message order
UPDATE dead_letters SET value_bytes = convert_to(value, 'UTF8'),
                        key_bytes = CASE WHEN message_key IS NULL THEN NULL ELSE convert_to(message_key, 'UTF8') END,
                        header_bytes = COALESCE((SELECT jsonb_agg(jsonb_build_array(encode(convert_to(k, 'UTF8'), 'base64'),
                                                                                   encode(convert_to(v, 'UTF8'), 'base64')))
                                                 FROM jsonb_each_text(headers) AS h(k, v)), '[]');
