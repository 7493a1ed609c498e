-- The ceiling of task completions on PostgreSQL, written by hand: the statements a completion
-- of the benchmark's 10-task process writes (the instance row with its snapshot, the task
-- closed and the next one opened, the SLA timer cancelled and the next one armed, one audit
-- entry), one transaction per completion, in a schema migrated like the engine's (the inbox
-- candidates are kept by the schema's own trigger, as for the engine). `scripts/bench-runtime`
-- runs it in a schema of its own (`n` is drawn from 10^15 values so that two transactions of a
-- run all but never pick the same ids):
--
--     PGOPTIONS='-c search_path=sopflow_ceiling' pgbench -n -M prepared \
--         -f scripts/ceilings/pg_completion.sql -c 8 -T 5 "$DATABASE_URL"
\set n random(1, 1000000000000000)
BEGIN;
INSERT INTO instances (id, dealer, process_id, hash, status, revision, prev_revision, snapshot, started_at, audit_seq, audit_hash)
VALUES ('ceiling' || :n, 'dealer0001', 'bench10', 'h', 'running', 2, 1, repeat('s', 880), 1, 2, repeat('a', 64))
ON CONFLICT (id) DO UPDATE SET status = excluded.status, revision = excluded.revision, prev_revision = excluded.prev_revision, snapshot = excluded.snapshot, audit_seq = excluded.audit_seq, audit_hash = excluded.audit_hash WHERE instances.revision = excluded.prev_revision;
DELETE FROM tasks WHERE id = 'ceiling' || :n || '-t1';
INSERT INTO tasks (id, instance_id, dealer, process_id, step, title_zh, title_en, roles, priority, due_at, due_key, created_at)
VALUES ('ceiling' || :n || '-t2', 'ceiling' || :n, 'dealer0001', 'bench10', 's2', 'z', 'e', '["foreman"]', 'normal', 1796567144511 + :n, 1796567144511 + :n, 1);
DELETE FROM timers WHERE id = 'ceiling' || :n || '-k1';
INSERT INTO timers (id, instance_id, dealer, fire_at) VALUES ('ceiling' || :n || '-k2', 'ceiling' || :n, 'dealer0001', 1796567144511 + :n);
INSERT INTO audit (chain, chain_seq, at, actor, kind, step, entry, definition_hash, prev_hash, hash)
VALUES ('ceiling' || :n, 2, 1, '{"id":"bench"}', 'task_completed', 's1', repeat('e', 650), repeat('d', 64), repeat('p', 64), repeat('q', 64));
COMMIT;
