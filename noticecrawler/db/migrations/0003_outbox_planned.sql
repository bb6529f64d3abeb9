-- A post's fan-out is planned slice by slice (each slice of notification rows committed and
-- its batches enqueued at once), so "taken" no longer means "planned": planned_at is set once
-- every slice is in. A post taken but never planned (its notify_post died mid-way) is re-sent
-- by the sweep.
ALTER TABLE notify_outbox ADD COLUMN IF NOT EXISTS planned_at timestamptz;
UPDATE notify_outbox SET planned_at = taken_at WHERE taken_at IS NOT NULL AND planned_at IS NULL;
CREATE INDEX IF NOT EXISTS notify_outbox_unplanned_idx ON notify_outbox (taken_at)
    WHERE taken_at IS NOT NULL AND planned_at IS NULL;
