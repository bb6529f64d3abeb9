-- Posts, one row per (board, post id), and the record of every crawl run.

CREATE TABLE IF NOT EXISTS posts (
    id               bigserial PRIMARY KEY,
    board            text        NOT NULL,
    post_id          text        NOT NULL,
    title            text        NOT NULL,
    url              text        NOT NULL,
    author           text,
    published_at     timestamptz,
    published_source text        NOT NULL DEFAULT 'list',
    category         text,
    pinned           boolean     NOT NULL DEFAULT false,
    attachments      jsonb       NOT NULL DEFAULT '[]'::jsonb,
    body             text,
    first_seen_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at     timestamptz NOT NULL DEFAULT now(),
    -- 'new' until a later crawl sees a different title/body: then 'edited'
    state            text        NOT NULL DEFAULT 'new',
    CONSTRAINT posts_board_post_id_key UNIQUE (board, post_id)
);
CREATE INDEX IF NOT EXISTS posts_board_first_seen_idx ON posts (board, first_seen_at DESC);

CREATE TABLE IF NOT EXISTS crawl_runs (
    id            bigserial PRIMARY KEY,
    board         text        NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    pages         integer     NOT NULL DEFAULT 0,
    requests      integer     NOT NULL DEFAULT 0,
    not_modified  integer     NOT NULL DEFAULT 0,
    items         integer     NOT NULL DEFAULT 0,
    new           integer     NOT NULL DEFAULT 0,
    errors        integer     NOT NULL DEFAULT 0,
    error_detail  text,
    finish_reason text
);
CREATE INDEX IF NOT EXISTS crawl_runs_board_started_idx ON crawl_runs (board, started_at DESC);

-- Posts waiting to be announced. Written in the same transaction as the new post; a
-- notify_post task takes the row (taken_at) and the periodic sweep re-sends rows never taken.
CREATE TABLE IF NOT EXISTS notify_outbox (
    post_id     bigint      PRIMARY KEY REFERENCES posts (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    taken_at    timestamptz,
    attempts    integer     NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS notify_outbox_pending_idx ON notify_outbox (created_at) WHERE taken_at IS NULL;

-- Earlier versions of edited posts (title/body as they were before the edit).
CREATE TABLE IF NOT EXISTS post_revisions (
    id         bigserial   PRIMARY KEY,
    post_id    bigint      NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    title      text        NOT NULL,
    body       text,
    replaced_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS post_revisions_post_idx ON post_revisions (post_id);
