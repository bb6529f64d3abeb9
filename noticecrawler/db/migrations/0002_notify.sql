-- Users, their phones and keyword subscriptions, and one row per (post, device) push.

CREATE TABLE IF NOT EXISTS users (
    id          bigserial   PRIMARY KEY,
    -- the app's account id, when there is one
    external_id text        UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS devices (
    id            bigserial   PRIMARY KEY,
    user_id       bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    fcm_token     text        NOT NULL UNIQUE,
    platform      text        NOT NULL CHECK (platform IN ('android', 'ios', 'web')),
    -- false once FCM said the token is dead (UNREGISTERED) or belongs to another sender
    active        boolean     NOT NULL DEFAULT true,
    last_error    text,
    last_error_at timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS devices_user_active_idx ON devices (user_id) WHERE active;

CREATE TABLE IF NOT EXISTS subscriptions (
    id                bigserial   PRIMARY KEY,
    user_id           bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    keywords          text[]      NOT NULL DEFAULT '{}',
    negative_keywords text[]      NOT NULL DEFAULT '{}',
    -- NULL or empty: every board
    boards            text[],
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS subscriptions_user_idx ON subscriptions (user_id);

-- The keyword matcher is rebuilt when this number changes. A statement trigger bumps it on
-- every change of `subscriptions`; the row lock orders concurrent writers, so each committed
-- change shows as a new, larger number (count(*)/max(updated_at) can miss a change committed
-- late with an older now()).
CREATE TABLE IF NOT EXISTS subscriptions_version (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version   bigint  NOT NULL DEFAULT 0
);
INSERT INTO subscriptions_version (singleton, version) VALUES (true, 0) ON CONFLICT DO NOTHING;

CREATE OR REPLACE FUNCTION bump_subscriptions_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE subscriptions_version SET version = version + 1 WHERE singleton;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS subscriptions_changed ON subscriptions;
CREATE TRIGGER subscriptions_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON subscriptions
    FOR EACH STATEMENT EXECUTE FUNCTION bump_subscriptions_version();

-- One push of one post to one device. `queued` → `sending` (claimed by a worker until
-- `lease_until`) → `sent` | `retry` | `failed` | `unregistered` | `invalid`. A `sending` row
-- whose lease ran out (its worker died) is claimable again; a `sent` row never is.
CREATE TABLE IF NOT EXISTS notifications (
    id              bigserial   PRIMARY KEY,
    post_id         bigint      NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    device_id       bigint      NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    -- the (lowest) subscription that matched, for "why did I get this?"
    subscription_id bigint      REFERENCES subscriptions (id) ON DELETE SET NULL,
    status          text        NOT NULL DEFAULT 'queued' CHECK (status IN (
                        'queued', 'sending', 'retry', 'sent', 'failed', 'unregistered',
                        'invalid')),
    attempts        integer     NOT NULL DEFAULT 0,
    claim_id        uuid,
    lease_until     timestamptz,
    next_attempt_at timestamptz,
    message_name    text,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT notifications_post_device_key UNIQUE (post_id, device_id)
);
CREATE INDEX IF NOT EXISTS notifications_open_idx ON notifications (post_id, device_id)
    WHERE status IN ('queued', 'sending', 'retry');
CREATE INDEX IF NOT EXISTS notifications_device_idx ON notifications (device_id);
