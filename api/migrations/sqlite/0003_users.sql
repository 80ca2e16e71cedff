-- People: operator accounts with a role and an optional site scope, and their sessions
-- (issue 10). Passwords are stored as Argon2id PHC strings; a session is stored only as the
-- SHA-256 of its random token (the token itself lives only in the browser's cookie).
CREATE TABLE users (
    user_id        TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    role           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    -- NULL = every site; otherwise a comma-separated list of site ids.
    sites          TEXT,
    created_ms     BIGINT NOT NULL,
    disabled_ms    BIGINT
);

CREATE TABLE sessions (
    token_hash    TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    created_ms    BIGINT NOT NULL,
    last_seen_ms  BIGINT NOT NULL,
    -- Absolute end, whatever the activity.
    expires_ms    BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_ms);
