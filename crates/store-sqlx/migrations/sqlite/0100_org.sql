-- The directory of the HTTP server (organisations, users, API tokens, idempotency records) and
-- the indexes of its instance list. Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE organisations (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('dealer', 'hq')),
    name          TEXT NOT NULL,
    time_zone     TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    organisation  TEXT NOT NULL REFERENCES organisations (id),
    name          TEXT NOT NULL,
    -- JSON array of role ids.
    roles         TEXT NOT NULL,
    admin         INTEGER NOT NULL,
    password_hash TEXT,
    lang          TEXT,
    active        INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX users_organisation ON users (organisation, id);

-- Only the SHA-256 of a token is kept; the token itself is shown once.
CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    hash          TEXT NOT NULL UNIQUE,
    user_id       TEXT NOT NULL REFERENCES users (id),
    label         TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    revoked_at    INTEGER
);
CREATE INDEX api_tokens_user ON api_tokens (user_id, created_at);

CREATE TABLE idempotency (
    scope         TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status        INTEGER NOT NULL,
    response      TEXT,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_age ON idempotency (created_at);

-- The instance list: a dealer's instances newest first (ids are time-ordered).
CREATE INDEX instances_dealer ON instances (dealer, id);
