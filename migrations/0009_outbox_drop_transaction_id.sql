-- outbox.transaction_id was written by every append and never read: the relay reads unpublished rows by
-- position (outbox_unpublished), which the append statement assigns in stream order. Issue 23 item 6.
ALTER TABLE outbox DROP COLUMN transaction_id;
