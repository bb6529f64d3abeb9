-- Posts a board removed (issue 11): set when a full read of a list page no longer shows a post
-- its neighbours still surround; cleared when the post appears again (never re-announced).
ALTER TABLE posts ADD COLUMN IF NOT EXISTS deleted_at timestamptz;
CREATE INDEX IF NOT EXISTS posts_board_live_idx ON posts (board) WHERE deleted_at IS NULL;

-- Per run: posts marked deleted, and answers asking us to slow down (429/503 with Retry-After).
ALTER TABLE crawl_runs ADD COLUMN IF NOT EXISTS deleted integer NOT NULL DEFAULT 0;
ALTER TABLE crawl_runs ADD COLUMN IF NOT EXISTS throttled integer NOT NULL DEFAULT 0;
