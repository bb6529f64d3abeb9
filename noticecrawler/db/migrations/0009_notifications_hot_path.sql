-- Fewer index writes per push (issue 13). Each push writes its notifications row three times
-- (planned insert, claim, record); measured in PostgreSQL's backend, 50k pushes of one post:
-- 132 µs of CPU per push with 0002–0008's indexes, 90 with this migration.
--
-- 1. notifications_open_idx (post_id, device_id) WHERE open duplicated the unique key on the
--    same columns and no hot statement uses it (their status tests are written so that no
--    partial index is chosen, see noticecrawler/notify/store.py): one index entry less per write.
DROP INDEX IF EXISTS notifications_open_idx;

-- 2. subscription_id tells "which subscription matched" and nothing depends on it. Its foreign
--    key (ON DELETE SET NULL) cost a lookup in subscriptions per planned row, and 0008's index
--    for the delete side one more index entry per write (~15 µs per push, ~12 % of
--    PostgreSQL's CPU per push). Without the key a deleted subscription's id stays in the
--    rows: readers show it as NULL by joining subscriptions (noticecrawler/notify/accounts.py),
--    and deleting subscriptions touches no notification row at all.
DROP INDEX IF EXISTS notifications_subscription_idx;
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_subscription_id_fkey;

-- 3. The claim (queued/retry → sending) and the sweep's requeue_at stamp become HOT updates (a
--    new row version on the same page, no index entry at all): no index may depend on a column
--    whose value they change. The sweep's partial index tested `status`, which the claim
--    changes; it now tests `is_open`, which stays true from queued through sending to retry
--    and turns false only when the record closes the row. Fill factor 50 leaves room on each
--    page for the claimed versions of its rows (the rows of a batch are inserted together
--    and claimed together); dead versions are pruned from the page later.
--    Adding a stored generated column rewrites the table once (under an exclusive lock).
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS is_open boolean
    GENERATED ALWAYS AS (status IN ('queued', 'sending', 'retry')) STORED;
DROP INDEX IF EXISTS notifications_due_idx;
CREATE INDEX IF NOT EXISTS notifications_due_idx ON notifications (id) WHERE is_open;
ALTER TABLE notifications SET (fillfactor = 50);
