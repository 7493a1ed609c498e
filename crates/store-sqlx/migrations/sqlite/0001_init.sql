-- The sopflow schema on SQLite. Times are milliseconds since the Unix epoch (UTC); JSON is
-- stored as text. `due_key` is the due time with "no due time" as the largest integer, so
-- that the inbox order is one index range. Small rows looked up by a text key (tasks, task
-- candidates) are `WITHOUT ROWID`: one B-tree search instead of two.

CREATE TABLE definitions (
    hash          TEXT PRIMARY KEY,
    process_id    TEXT NOT NULL,
    version       INTEGER NOT NULL,
    pack_id       TEXT,
    pack_version  TEXT,
    document      TEXT NOT NULL,
    deployed_at   INTEGER NOT NULL
);

CREATE TABLE deployments (
    seq           INTEGER PRIMARY KEY,
    dealer        TEXT NOT NULL,
    process_id    TEXT NOT NULL,
    hash          TEXT NOT NULL REFERENCES definitions (hash),
    deployed_at   INTEGER NOT NULL
);
CREATE INDEX deployments_current ON deployments (dealer, process_id, seq);

CREATE TABLE instances (
    id            TEXT PRIMARY KEY,
    dealer        TEXT NOT NULL,
    process_id    TEXT NOT NULL,
    hash          TEXT NOT NULL,
    business_key  TEXT,
    parent_id     TEXT,
    status        TEXT NOT NULL,
    outcome       TEXT,
    revision      INTEGER NOT NULL,
    -- The revision this row replaced: lets one multi-row upsert check every row's revision.
    prev_revision INTEGER NOT NULL,
    snapshot      TEXT NOT NULL,
    started_at    INTEGER NOT NULL,
    ended_at      INTEGER,
    audit_seq     INTEGER NOT NULL,
    audit_hash    TEXT NOT NULL
);

CREATE TABLE tasks (
    id            TEXT PRIMARY KEY,
    instance_id   TEXT NOT NULL,
    dealer        TEXT NOT NULL,
    process_id    TEXT NOT NULL,
    step          TEXT NOT NULL,
    title_zh      TEXT NOT NULL,
    title_en      TEXT NOT NULL,
    roles         TEXT NOT NULL,
    assignee      TEXT,
    priority      TEXT NOT NULL,
    due_at        INTEGER,
    due_key       INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    business_key  TEXT,
    form          TEXT
) WITHOUT ROWID;
CREATE INDEX tasks_assignee ON tasks (dealer, assignee, due_key, id) WHERE assignee IS NOT NULL;

-- One row per candidate role of each unclaimed task, kept by triggers on `tasks`: the inbox
-- reads one range of this index per role.
CREATE TABLE task_candidates (
    task_id       TEXT NOT NULL,
    role          TEXT NOT NULL,
    dealer        TEXT NOT NULL,
    due_key       INTEGER NOT NULL,
    PRIMARY KEY (task_id, role)
) WITHOUT ROWID;
CREATE INDEX task_candidates_inbox ON task_candidates (dealer, role, due_key, task_id);

CREATE TRIGGER tasks_candidates_insert AFTER INSERT ON tasks WHEN NEW.assignee IS NULL
BEGIN
    INSERT OR IGNORE INTO task_candidates (task_id, role, dealer, due_key)
    SELECT NEW.id, value, NEW.dealer, NEW.due_key FROM json_each(NEW.roles);
END;

CREATE TRIGGER tasks_candidates_update AFTER UPDATE ON tasks
BEGIN
    DELETE FROM task_candidates WHERE task_id = OLD.id;
    INSERT OR IGNORE INTO task_candidates (task_id, role, dealer, due_key)
    SELECT NEW.id, value, NEW.dealer, NEW.due_key FROM json_each(NEW.roles) WHERE NEW.assignee IS NULL;
END;

CREATE TRIGGER tasks_candidates_delete AFTER DELETE ON tasks
BEGIN
    DELETE FROM task_candidates WHERE task_id = OLD.id;
END;

CREATE TABLE timers (
    id            TEXT PRIMARY KEY,
    instance_id   TEXT NOT NULL,
    dealer        TEXT NOT NULL,
    fire_at       INTEGER NOT NULL,
    owner         TEXT,
    lease_until   INTEGER
);
CREATE INDEX timers_due ON timers (fire_at);

CREATE TABLE subscriptions (
    dealer        TEXT NOT NULL,
    name          TEXT NOT NULL,
    key           TEXT,
    instance_id   TEXT NOT NULL
);
CREATE INDEX subscriptions_lookup ON subscriptions (dealer, name, key);

CREATE TABLE buffered_messages (
    id            INTEGER PRIMARY KEY,
    dealer        TEXT NOT NULL,
    name          TEXT NOT NULL,
    key           TEXT,
    payload       TEXT NOT NULL,
    at            INTEGER NOT NULL
);
CREATE INDEX buffered_messages_lookup ON buffered_messages (dealer, name, id);

CREATE TABLE outbox (
    seq             INTEGER PRIMARY KEY,
    instance_id     TEXT NOT NULL,
    dealer          TEXT NOT NULL,
    effect          TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    attempts        INTEGER NOT NULL DEFAULT 0,
    available_at    INTEGER NOT NULL,
    owner           TEXT,
    lease_until     INTEGER
);
CREATE INDEX outbox_available ON outbox (available_at, seq);

CREATE TABLE audit (
    seq             INTEGER PRIMARY KEY,
    chain           TEXT NOT NULL,
    chain_seq       INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    actor           TEXT NOT NULL,
    kind            TEXT NOT NULL,
    step            TEXT,
    entry           TEXT NOT NULL,
    definition_hash TEXT,
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL,
    UNIQUE (chain, chain_seq)
);

-- The audit trail is append-only: the database itself refuses edits and deletions.
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only: UPDATE is refused');
END;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only: DELETE is refused');
END;
