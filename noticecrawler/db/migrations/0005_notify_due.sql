-- Push retries live in PostgreSQL, not in broker countdowns (issue 9, item 2). A row to retry
-- is `retry` with `next_attempt_at` (its own Retry-After or backoff); the notifier's sweep
-- (beat, every few seconds) enqueues a send_batch for the rows that are due. `requeue_at`:
-- the sweep or the planner has enqueued this open row's send_batch and enqueues it again only
-- after this time (its task was lost: broker gone, worker killed with the message reserved).
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS requeue_at timestamptz;

-- Input that means nothing is refused, whoever writes it (issue 9, item 11): a blank keyword
-- (listed as "every post", matching nothing), a blank board name, an empty device token.
-- NOT VALID: rows already stored stay; the commands refuse such input with a clear error.
CREATE OR REPLACE FUNCTION notify_no_blank(items text[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE AS $$
    SELECT NOT EXISTS (
        SELECT 1 FROM unnest(items) AS k WHERE k IS NULL OR btrim(k, E' \t\r\n') = ''
    )
$$;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_no_blank CHECK (
    notify_no_blank(keywords) AND notify_no_blank(negative_keywords)
    AND (boards IS NULL OR notify_no_blank(boards))
) NOT VALID;
ALTER TABLE devices ADD CONSTRAINT devices_token_not_blank
    CHECK (btrim(fcm_token, E' \t\r\n') <> '') NOT VALID;
