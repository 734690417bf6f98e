-- Retention (src/retention/Retention.ts) deletes old rows in small batches, oldest first: these indexes let each
-- batch find its rows without scanning the table. Unpublished outbox rows are never candidates.
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;
CREATE INDEX inbox_processed_at ON inbox (processed_at);
CREATE INDEX dead_letters_discarded_at ON dead_letters (updated_at) WHERE status = 'discarded';
