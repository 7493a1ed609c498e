-- A lean schema for the PostgreSQL ceiling: the four tables a completion writes, with their
-- primary keys (and the audit's unique position) only: no inbox candidates, no trigger, no
-- index for the inbox, the reports or the timer scan. `scripts/bench-runtime` runs
-- `pg_completion.sql` against it beside the engine's own schema, to show what those cost.
CREATE TABLE instances (
    id text PRIMARY KEY, dealer text NOT NULL, process_id text NOT NULL, hash text NOT NULL,
    status text NOT NULL, revision bigint NOT NULL, prev_revision bigint NOT NULL, snapshot text NOT NULL,
    started_at bigint NOT NULL, audit_seq bigint NOT NULL, audit_hash text NOT NULL
);
CREATE TABLE tasks (
    id text PRIMARY KEY, instance_id text NOT NULL, dealer text NOT NULL, process_id text NOT NULL,
    step text NOT NULL, title_zh text NOT NULL, title_en text NOT NULL, roles text NOT NULL,
    priority text NOT NULL, due_at bigint, due_key bigint NOT NULL, created_at bigint NOT NULL
);
CREATE TABLE timers (id text PRIMARY KEY, instance_id text NOT NULL, dealer text NOT NULL, fire_at bigint NOT NULL);
CREATE TABLE audit (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, chain text NOT NULL, chain_seq bigint NOT NULL,
    at bigint NOT NULL, actor text NOT NULL, kind text NOT NULL, step text, entry text NOT NULL,
    definition_hash text, prev_hash text NOT NULL, hash text NOT NULL, UNIQUE (chain, chain_seq)
);
