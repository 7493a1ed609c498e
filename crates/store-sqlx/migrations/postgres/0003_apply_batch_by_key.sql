-- `sopflow_apply` again: its deletes are written as `id = ANY (ARRAY(...))` (the plan cached for
-- `id IN (SELECT jsonb_array_elements_text(...))` expects 100 ids and, on a table of a few
-- thousand rows, scans the whole table instead of using the primary key), and a statement runs
-- only if its list is in the batch (a completion fills 6 of the 12; each statement skipped saves
-- its executor start-up on a 2-core machine where PostgreSQL's CPU is the limit).

CREATE OR REPLACE FUNCTION sopflow_apply(batch jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    n_expected bigint;
    n_written bigint;
BEGIN
    n_expected := coalesce(jsonb_array_length(batch -> 'instances'), 0);
    IF n_expected > 0 THEN
        INSERT INTO instances (id, dealer, process_id, hash, business_key, parent_id, status, outcome, revision,
                               prev_revision, snapshot, started_at, ended_at, audit_seq, audit_hash)
        SELECT x ->> 'id', x ->> 'dealer', x ->> 'process_id', x ->> 'hash', x ->> 'business_key',
               x ->> 'parent_id', x ->> 'status', x ->> 'outcome', (x ->> 'revision')::bigint,
               (x ->> 'prev_revision')::bigint, x ->> 'snapshot', (x ->> 'started_at')::bigint,
               (x ->> 'ended_at')::bigint, (x ->> 'audit_seq')::bigint, x ->> 'audit_hash'
        FROM jsonb_array_elements(batch -> 'instances') AS x
        ON CONFLICT (id) DO UPDATE SET status = excluded.status, outcome = excluded.outcome,
            revision = excluded.revision, prev_revision = excluded.prev_revision, snapshot = excluded.snapshot,
            ended_at = excluded.ended_at, audit_seq = excluded.audit_seq, audit_hash = excluded.audit_hash
        WHERE instances.revision = excluded.prev_revision;
        GET DIAGNOSTICS n_written = ROW_COUNT;
        IF n_written <> n_expected THEN
            RAISE EXCEPTION 'sopflow: revision conflict' USING ERRCODE = '40001';
        END IF;
    END IF;

    IF batch ? 'tasks_removed' THEN
        DELETE FROM tasks WHERE id = ANY (ARRAY(SELECT jsonb_array_elements_text(batch -> 'tasks_removed')));
    END IF;

    IF batch ? 'tasks' THEN
        INSERT INTO tasks (id, instance_id, dealer, process_id, step, title_zh, title_en, roles, assignee, priority,
                           due_at, due_key, created_at, business_key, form)
        SELECT x ->> 'id', x ->> 'instance_id', x ->> 'dealer', x ->> 'process_id', x ->> 'step', x ->> 'title_zh',
               x ->> 'title_en', x ->> 'roles', x ->> 'assignee', x ->> 'priority', (x ->> 'due_at')::bigint,
               (x ->> 'due_key')::bigint, (x ->> 'created_at')::bigint, x ->> 'business_key', x ->> 'form'
        FROM jsonb_array_elements(batch -> 'tasks') AS x
        ON CONFLICT (id) DO UPDATE SET title_zh = excluded.title_zh, title_en = excluded.title_en,
            roles = excluded.roles, assignee = excluded.assignee, priority = excluded.priority,
            due_at = excluded.due_at, due_key = excluded.due_key;
    END IF;

    IF batch ? 'timers_removed' THEN
        DELETE FROM timers WHERE id = ANY (ARRAY(SELECT jsonb_array_elements_text(batch -> 'timers_removed')));
    END IF;

    IF batch ? 'timers' THEN
        INSERT INTO timers (id, instance_id, dealer, fire_at)
        SELECT x ->> 'id', x ->> 'instance_id', x ->> 'dealer', (x ->> 'fire_at')::bigint
        FROM jsonb_array_elements(batch -> 'timers') AS x
        ON CONFLICT (id) DO UPDATE SET fire_at = excluded.fire_at, owner = NULL, lease_until = NULL;
    END IF;

    IF batch ? 'subscriptions_touched' THEN
        DELETE FROM subscriptions AS s USING jsonb_array_elements(batch -> 'subscriptions_touched') AS x
        WHERE s.dealer = x ->> 'dealer' AND s.name = x ->> 'name' AND s.key IS NOT DISTINCT FROM x ->> 'key'
            AND s.instance_id = x ->> 'instance_id';
    END IF;

    IF batch ? 'subscriptions' THEN
        INSERT INTO subscriptions (dealer, name, key, instance_id)
        SELECT x ->> 'dealer', x ->> 'name', x ->> 'key', x ->> 'instance_id'
        FROM jsonb_array_elements(batch -> 'subscriptions') AS x;
    END IF;

    IF batch ? 'buffered' THEN
        INSERT INTO buffered_messages (dealer, name, key, payload, at)
        SELECT x ->> 'dealer', x ->> 'name', x ->> 'key', x ->> 'payload', (x ->> 'at')::bigint
        FROM jsonb_array_elements(batch -> 'buffered') AS x;
    END IF;

    IF batch ? 'buffered_taken' THEN
        DELETE FROM buffered_messages
        WHERE id = ANY (ARRAY(SELECT (jsonb_array_elements_text(batch -> 'buffered_taken'))::bigint));
    END IF;

    IF batch ? 'outbox' THEN
        INSERT INTO outbox (instance_id, dealer, effect, idempotency_key, available_at)
        SELECT x ->> 'instance_id', x ->> 'dealer', x ->> 'effect', x ->> 'idempotency_key',
               (x ->> 'available_at')::bigint
        FROM jsonb_array_elements(batch -> 'outbox') AS x
        ON CONFLICT (idempotency_key) DO NOTHING;
    END IF;

    IF batch ? 'outbox_done' THEN
        DELETE FROM outbox WHERE seq = ANY (ARRAY(SELECT (jsonb_array_elements_text(batch -> 'outbox_done'))::bigint));
    END IF;

    IF batch ? 'audit' THEN
        INSERT INTO audit (chain, chain_seq, at, actor, kind, step, entry, definition_hash, prev_hash, hash)
        SELECT x ->> 'chain', (x ->> 'chain_seq')::bigint, (x ->> 'at')::bigint, x ->> 'actor', x ->> 'kind',
               x ->> 'step', x ->> 'entry', x ->> 'definition_hash', x ->> 'prev_hash', x ->> 'hash'
        FROM jsonb_array_elements(batch -> 'audit') WITH ORDINALITY AS e (x, n)
        ORDER BY n;
    END IF;
END
$$;
