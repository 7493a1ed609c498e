-- The sopflow schema on PostgreSQL. Times are milliseconds since the Unix epoch (UTC); JSON
-- is stored as text so that the audit hashes cover exactly what was written. `due_key` is the
-- due time with "no due time" as the largest integer, so the inbox order is one index range.

CREATE TABLE definitions (
    hash          TEXT PRIMARY KEY,
    process_id    TEXT NOT NULL,
    version       BIGINT NOT NULL,
    pack_id       TEXT,
    pack_version  TEXT,
    document      TEXT NOT NULL,
    deployed_at   BIGINT NOT NULL
);

CREATE TABLE deployments (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dealer        TEXT NOT NULL,
    process_id    TEXT NOT NULL,
    hash          TEXT NOT NULL REFERENCES definitions (hash),
    deployed_at   BIGINT NOT NULL
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
    revision      BIGINT NOT NULL,
    -- The revision this row replaced: lets one multi-row upsert check every row's revision.
    prev_revision BIGINT NOT NULL,
    snapshot      TEXT NOT NULL,
    started_at    BIGINT NOT NULL,
    ended_at      BIGINT,
    audit_seq     BIGINT NOT NULL,
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
    due_at        BIGINT,
    due_key       BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    business_key  TEXT,
    form          TEXT
);
CREATE INDEX tasks_assignee ON tasks (dealer, assignee, due_key, id) WHERE assignee IS NOT NULL;

-- One row per candidate role of each unclaimed task, kept by a trigger on `tasks`: the inbox
-- reads one range of this index per role.
CREATE TABLE task_candidates (
    task_id       TEXT NOT NULL,
    role          TEXT NOT NULL,
    dealer        TEXT NOT NULL,
    due_key       BIGINT NOT NULL,
    PRIMARY KEY (task_id, role)
);
CREATE INDEX task_candidates_inbox ON task_candidates (dealer, role, due_key, task_id);

CREATE FUNCTION tasks_candidates() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM task_candidates WHERE task_id = OLD.id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.assignee IS NULL THEN
        INSERT INTO task_candidates (task_id, role, dealer, due_key)
        SELECT NEW.id, r, NEW.dealer, NEW.due_key FROM json_array_elements_text(NEW.roles::json) AS r
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER tasks_candidates AFTER INSERT OR UPDATE OR DELETE ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_candidates();

CREATE TABLE timers (
    id            TEXT PRIMARY KEY,
    instance_id   TEXT NOT NULL,
    dealer        TEXT NOT NULL,
    fire_at       BIGINT NOT NULL,
    owner         TEXT,
    lease_until   BIGINT
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
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dealer        TEXT NOT NULL,
    name          TEXT NOT NULL,
    key           TEXT,
    payload       TEXT NOT NULL,
    at            BIGINT NOT NULL
);
CREATE INDEX buffered_messages_lookup ON buffered_messages (dealer, name, id);

CREATE TABLE outbox (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id     TEXT NOT NULL,
    dealer          TEXT NOT NULL,
    effect          TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    attempts        BIGINT NOT NULL DEFAULT 0,
    available_at    BIGINT NOT NULL,
    owner           TEXT,
    lease_until     BIGINT
);
CREATE INDEX outbox_available ON outbox (available_at, seq);

CREATE TABLE audit (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain           TEXT NOT NULL,
    chain_seq       BIGINT NOT NULL,
    at              BIGINT NOT NULL,
    actor           TEXT NOT NULL,
    kind            TEXT NOT NULL,
    step            TEXT,
    entry           TEXT NOT NULL,
    definition_hash TEXT,
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL,
    UNIQUE (chain, chain_seq)
);

-- The audit trail is append-only: the database itself refuses edits, deletions and
-- truncation.
CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % is refused', TG_OP;
END
$$;
CREATE TRIGGER audit_no_update_or_delete BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
