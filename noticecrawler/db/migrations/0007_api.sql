-- The HTTP API (noticecrawler/api): bearer tokens, and the index of its keyset pagination.

-- A bearer token of the API. Only the SHA-256 of the token is stored (a token is 32 random
-- bytes, so a fast hash is enough: there is nothing to brute-force); `prefix` is the token's
-- first characters, shown by the CLI to tell tokens apart. A token with no user is an admin
-- token; `admin` on a user's token makes that user an operator too.
CREATE TABLE IF NOT EXISTS api_tokens (
    id           bigserial   PRIMARY KEY,
    user_id      bigint      REFERENCES users (id) ON DELETE CASCADE,
    token_sha256 bytea       NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    prefix       text        NOT NULL,
    admin        boolean     NOT NULL DEFAULT false,
    label        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    CHECK (user_id IS NOT NULL OR admin)
);
CREATE INDEX IF NOT EXISTS api_tokens_user_idx ON api_tokens (user_id);

-- GET /v1/boards/{board}/posts walks a board newest first by (published_at, id): this index
-- answers any page, however deep, by seeking to the cursor.
CREATE INDEX IF NOT EXISTS posts_board_published_idx ON posts (board, published_at DESC, id DESC);
