-- An index under notifications.subscription_id, the foreign key that 0002 declared
-- ON DELETE SET NULL. Without it, deleting a subscription (PUT /v1/subscriptions replaces a
-- user's subscriptions by deleting them, `noticecrawler subscriptions remove` deletes one)
-- makes PostgreSQL look for that subscription's pushes by reading the whole notifications
-- table, once per deleted subscription: 11.8 s for a bulk delete after one 10k-device post.
-- Partial: rows whose subscription is gone already (NULL) are never looked up by it.
CREATE INDEX IF NOT EXISTS notifications_subscription_idx
    ON notifications (subscription_id) WHERE subscription_id IS NOT NULL;
