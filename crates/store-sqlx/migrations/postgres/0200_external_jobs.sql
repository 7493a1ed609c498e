-- External tasks: jobs of `topic:<name>` actions waiting for, or locked by, an external worker
-- (plugins::external). One row per core try (`<job>.<attempt>`). `version` is bumped on every
-- change and every update is conditional on it, so two servers fetching at once never lock the
-- same job twice. Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE external_jobs (
    id                   TEXT PRIMARY KEY,
    job                  TEXT NOT NULL,
    instance_id          TEXT NOT NULL,
    dealer               TEXT NOT NULL,
    topic                TEXT NOT NULL,
    -- JSON.
    input                TEXT NOT NULL,
    idempotency_key      TEXT NOT NULL,
    retry_max_attempts   BIGINT NOT NULL,
    retry_backoff_ms     BIGINT NOT NULL,
    retry_max_backoff_ms BIGINT NOT NULL,
    failures             BIGINT NOT NULL,
    due_at               BIGINT NOT NULL,
    lock_worker          TEXT,
    lock_until           BIGINT,
    state                TEXT NOT NULL CHECK (state IN ('open', 'completed', 'given_up')),
    -- JSON, once completed.
    output               TEXT,
    last_error           TEXT,
    version              BIGINT NOT NULL
);
-- What a fetch reads: the open jobs of a topic in due order.
CREATE INDEX external_jobs_open ON external_jobs (topic, due_at, id) WHERE state = 'open';
CREATE INDEX external_jobs_instance ON external_jobs (instance_id);
