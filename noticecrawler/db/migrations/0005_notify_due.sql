-- Push retries live in PostgreSQL, not in broker countdowns (issue 9, item 2). A row to retry
-- is `retry` with `next_attempt_at` (its own Retry-After or backoff); the notifier's sweep
-- (beat, every few seconds) enqueues a send_batch for the rows that are due. `requeue_at`:
-- the sweep or the planner has enqueued this open row's send_batch and enqueues it again only
-- after this time (its task was lost: broker gone, worker killed with the message reserved).
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS requeue_at timestamptz;
