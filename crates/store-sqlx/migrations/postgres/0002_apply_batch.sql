-- A whole batch of transitions is written by ONE call: the adapter passes the batch as JSON to
-- `sopflow_apply`, which applies it to every table. One round trip per transaction (in
-- autocommit: the call is the transaction) instead of one per statement. Lists absent from the
-- payload are simply empty.
--
-- Instance writes are checked by revision in the upsert itself (`WHERE instances.revision =
-- excluded.prev_revision`), which PostgreSQL re-checks after waiting for a concurrent writer's
-- row lock; if any row was not written, the call fails whole with 'sopflow: revision conflict'.

CREATE FUNCTION sopflow_apply(batch jsonb) RETURNS void LANGUAGE plpgsql AS $$
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

    DELETE FROM tasks WHERE id IN (SELECT jsonb_array_elements_text(batch -> 'tasks_removed'));

    INSERT INTO tasks (id, instance_id, dealer, process_id, step, title_zh, title_en, roles, assignee, priority,
                       due_at, due_key, created_at, business_key, form)
    SELECT x ->> 'id', x ->> 'instance_id', x ->> 'dealer', x ->> 'process_id', x ->> 'step', x ->> 'title_zh',
           x ->> 'title_en', x ->> 'roles', x ->> 'assignee', x ->> 'priority', (x ->> 'due_at')::bigint,
           (x ->> 'due_key')::bigint, (x ->> 'created_at')::bigint, x ->> 'business_key', x ->> 'form'
    FROM jsonb_array_elements(batch -> 'tasks') AS x
    ON CONFLICT (id) DO UPDATE SET title_zh = excluded.title_zh, title_en = excluded.title_en,
        roles = excluded.roles, assignee = excluded.assignee, priority = excluded.priority,
        due_at = excluded.due_at, due_key = excluded.due_key;

    DELETE FROM timers WHERE id IN (SELECT jsonb_array_elements_text(batch -> 'timers_removed'));

    INSERT INTO timers (id, instance_id, dealer, fire_at)
    SELECT x ->> 'id', x ->> 'instance_id', x ->> 'dealer', (x ->> 'fire_at')::bigint
    FROM jsonb_array_elements(batch -> 'timers') AS x
    ON CONFLICT (id) DO UPDATE SET fire_at = excluded.fire_at, owner = NULL, lease_until = NULL;

    DELETE FROM subscriptions AS s USING jsonb_array_elements(batch -> 'subscriptions_touched') AS x
    WHERE s.dealer = x ->> 'dealer' AND s.name = x ->> 'name' AND s.key IS NOT DISTINCT FROM x ->> 'key'
        AND s.instance_id = x ->> 'instance_id';

    INSERT INTO subscriptions (dealer, name, key, instance_id)
    SELECT x ->> 'dealer', x ->> 'name', x ->> 'key', x ->> 'instance_id'
    FROM jsonb_array_elements(batch -> 'subscriptions') AS x;

    INSERT INTO buffered_messages (dealer, name, key, payload, at)
    SELECT x ->> 'dealer', x ->> 'name', x ->> 'key', x ->> 'payload', (x ->> 'at')::bigint
    FROM jsonb_array_elements(batch -> 'buffered') AS x;

    DELETE FROM buffered_messages
    WHERE id IN (SELECT (jsonb_array_elements_text(batch -> 'buffered_taken'))::bigint);

    INSERT INTO outbox (instance_id, dealer, effect, idempotency_key, available_at)
    SELECT x ->> 'instance_id', x ->> 'dealer', x ->> 'effect', x ->> 'idempotency_key',
           (x ->> 'available_at')::bigint
    FROM jsonb_array_elements(batch -> 'outbox') AS x
    ON CONFLICT (idempotency_key) DO NOTHING;

    DELETE FROM outbox WHERE seq IN (SELECT (jsonb_array_elements_text(batch -> 'outbox_done'))::bigint);

    INSERT INTO audit (chain, chain_seq, at, actor, kind, step, entry, definition_hash, prev_hash, hash)
    SELECT x ->> 'chain', (x ->> 'chain_seq')::bigint, (x ->> 'at')::bigint, x ->> 'actor', x ->> 'kind',
           x ->> 'step', x ->> 'entry', x ->> 'definition_hash', x ->> 'prev_hash', x ->> 'hash'
    FROM jsonb_array_elements(batch -> 'audit') WITH ORDINALITY AS e (x, n)
    ORDER BY n;
END
$$;
