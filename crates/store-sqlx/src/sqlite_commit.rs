//! How a batch is written on SQLite: one multi-row statement per table, all of them, from
//! `BEGIN IMMEDIATE` to `COMMIT`, sent as ONE call on the writer's connection.
//!
//! The cost of sqlx on SQLite is per call (a round trip to the connection's worker thread), not
//! per row, and sqlx runs every statement of a multi-statement query, binding the arguments in
//! order. So the net effect per table ([`crate::payload::Net`]) becomes an upsert, a `DELETE ...
//! IN (...)` or an insert each, and a batch of hundreds of transitions costs one call, like a
//! single one. The revision check is the `instances_revision_check` trigger: an instance row
//! whose revision is not the expected one aborts the statement; the transaction is then rolled
//! back and the batch refused as a conflict.

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use store::{Change, Error, Millis};

use crate::db;
use crate::payload::Net;

/// How many rows one multi-row statement carries (well under SQLite's 32,766 parameters).
const ROWS_PER_STATEMENT: usize = 400;

/// `DELETE FROM table WHERE column IN (...)`, in chunks, for ids that are strings or numbers.
fn delete_in<'a, T>(qb: &mut QueryBuilder<'a, Sqlite>, table: &str, column: &str, ids: &[T])
where
    T: 'a + sqlx::Encode<'a, Sqlite> + sqlx::Type<Sqlite> + Clone,
{
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        qb.push(format!("DELETE FROM {table} WHERE {column} IN ("));
        let mut sep = qb.separated(", ");
        for id in chunk {
            sep.push_bind(id.clone());
        }
        qb.push("); ");
    }
}

/// A batch that was not written.
pub(crate) struct Failed {
    pub(crate) error: Error,
    /// The transaction could not be rolled back: the connection is unusable.
    pub(crate) in_doubt: bool,
}

/// What a failed write means: a lost race (a stale revision, an audit position taken) or an
/// error of the database.
fn refusal(e: sqlx::Error, net: &Net<'_>) -> Error {
    match e {
        sqlx::Error::Database(d) if d.message().contains("sopflow: revision conflict") || d.is_unique_violation() => {
            Error::Conflict { instances: net.instance_ids() }
        }
        e => db(e),
    }
}

/// Writes a batch in one transaction on the writer's connection.
pub(crate) async fn commit(conn: &mut SqliteConnection, changes: &[Change]) -> Result<(), Failed> {
    let net = Net::of(changes);
    let mut qb: QueryBuilder<'_, Sqlite> = QueryBuilder::new("BEGIN IMMEDIATE; ");

    for chunk in net.instances.chunks(ROWS_PER_STATEMENT) {
        qb.push(
            "INSERT INTO instances (id, dealer, process_id, hash, business_key, parent_id, status, outcome, \
             revision, prev_revision, snapshot, started_at, ended_at, audit_seq, audit_hash) ",
        );
        qb.push_values(chunk, |mut b, (r, expected)| {
            b.push_bind(&r.id)
                .push_bind(&r.dealer)
                .push_bind(&r.process_id)
                .push_bind(&r.hash)
                .push_bind(&r.business_key)
                .push_bind(&r.parent_id)
                .push_bind(&r.status)
                .push_bind(&r.outcome)
                .push_bind(r.revision)
                .push_bind(*expected)
                .push_bind(&r.snapshot)
                .push_bind(r.started_at)
                .push_bind(r.ended_at)
                .push_bind(r.audit_seq)
                .push_bind(&r.audit_hash);
        });
        qb.push(
            " ON CONFLICT (id) DO UPDATE SET status = excluded.status, outcome = excluded.outcome, \
             revision = excluded.revision, prev_revision = excluded.prev_revision, \
             snapshot = excluded.snapshot, ended_at = excluded.ended_at, \
             audit_seq = excluded.audit_seq, audit_hash = excluded.audit_hash; ",
        );
    }

    let removed: Vec<&str> = net.tasks_removed().collect();
    delete_in(&mut qb, "tasks", "id", &removed);
    let tasks: Vec<_> = net.tasks_upserted().collect();
    for chunk in tasks.chunks(ROWS_PER_STATEMENT) {
        qb.push(
            "INSERT INTO tasks (id, instance_id, dealer, process_id, step, title_zh, title_en, roles, assignee, \
             priority, due_at, due_key, created_at, business_key, form) ",
        );
        qb.push_values(chunk, |mut b, t| {
            b.push_bind(&t.id)
                .push_bind(&t.instance_id)
                .push_bind(&t.dealer)
                .push_bind(&t.process_id)
                .push_bind(&t.step)
                .push_bind(&t.title_zh)
                .push_bind(&t.title_en)
                .push_bind(serde_json::Value::from(t.roles.clone()).to_string())
                .push_bind(&t.assignee)
                .push_bind(&t.priority)
                .push_bind(t.due_at)
                .push_bind(t.due_at.unwrap_or(Millis::MAX))
                .push_bind(t.created_at)
                .push_bind(&t.business_key)
                .push_bind(&t.form);
        });
        qb.push(
            " ON CONFLICT (id) DO UPDATE SET title_zh = excluded.title_zh, title_en = excluded.title_en, \
             roles = excluded.roles, assignee = excluded.assignee, priority = excluded.priority, \
             due_at = excluded.due_at, due_key = excluded.due_key; ",
        );
    }

    let removed: Vec<&str> = net.timers_removed().collect();
    delete_in(&mut qb, "timers", "id", &removed);
    let timers: Vec<_> = net.timers_set().collect();
    for chunk in timers.chunks(ROWS_PER_STATEMENT) {
        qb.push("INSERT INTO timers (id, instance_id, dealer, fire_at) ");
        qb.push_values(chunk, |mut b, t| {
            b.push_bind(&t.id).push_bind(&t.instance_id).push_bind(&t.dealer).push_bind(t.fire_at);
        });
        qb.push(" ON CONFLICT (id) DO UPDATE SET fire_at = excluded.fire_at, owner = NULL, lease_until = NULL; ");
    }

    for s in &net.subscriptions_touched {
        qb.push("DELETE FROM subscriptions WHERE dealer = ")
            .push_bind(&s.dealer)
            .push(" AND name = ")
            .push_bind(&s.name)
            .push(" AND key IS ")
            .push_bind(&s.key)
            .push(" AND instance_id = ")
            .push_bind(&s.instance_id)
            .push("; ");
    }
    let subs: Vec<_> = net.subscriptions().collect();
    if !subs.is_empty() {
        qb.push("INSERT INTO subscriptions (dealer, name, key, instance_id) ");
        qb.push_values(subs, |mut b, s| {
            b.push_bind(&s.dealer).push_bind(&s.name).push_bind(&s.key).push_bind(&s.instance_id);
        });
        qb.push("; ");
    }
    let buffered: Vec<_> = changes.iter().flat_map(|c| &c.buffered).collect();
    if !buffered.is_empty() {
        qb.push("INSERT INTO buffered_messages (dealer, name, key, payload, at) ");
        qb.push_values(buffered, |mut b, m| {
            b.push_bind(&m.dealer).push_bind(&m.name).push_bind(&m.key).push_bind(&m.payload).push_bind(m.at);
        });
        qb.push("; ");
    }
    let taken: Vec<i64> = changes.iter().flat_map(|c| c.buffered_taken.iter().copied()).collect();
    delete_in(&mut qb, "buffered_messages", "id", &taken);

    let outbox: Vec<_> = changes.iter().flat_map(|c| &c.outbox).collect();
    for chunk in outbox.chunks(ROWS_PER_STATEMENT) {
        qb.push("INSERT INTO outbox (instance_id, dealer, effect, idempotency_key, available_at) ");
        qb.push_values(chunk, |mut b, o| {
            b.push_bind(&o.instance_id)
                .push_bind(&o.dealer)
                .push_bind(&o.effect)
                .push_bind(&o.idempotency_key)
                .push_bind(o.available_at);
        });
        qb.push(" ON CONFLICT (idempotency_key) DO NOTHING; ");
    }
    let done: Vec<i64> = changes.iter().flat_map(|c| c.outbox_done.iter().copied()).collect();
    delete_in(&mut qb, "outbox", "seq", &done);

    let entries: Vec<_> = changes.iter().flat_map(|c| &c.audit).collect();
    for chunk in entries.chunks(ROWS_PER_STATEMENT) {
        qb.push(
            "INSERT INTO audit (chain, chain_seq, at, actor, kind, step, entry, definition_hash, prev_hash, hash) ",
        );
        qb.push_values(chunk, |mut b, a| {
            b.push_bind(&a.chain)
                .push_bind(a.chain_seq)
                .push_bind(a.at)
                .push_bind(&a.actor)
                .push_bind(&a.kind)
                .push_bind(&a.step)
                .push_bind(&a.entry)
                .push_bind(&a.definition_hash)
                .push_bind(&a.prev_hash)
                .push_bind(&a.hash);
        });
        qb.push("; ");
    }
    qb.push("COMMIT");

    // Small batches repeat the same shapes: keep them prepared. Large ones vary with their
    // size and would only churn the cache.
    let persistent = changes.len() <= 4;
    match qb.build().persistent(persistent).execute(&mut *conn).await {
        Ok(_) => Ok(()),
        Err(e) => {
            // The transaction stopped at the failing statement: end it. If even that fails,
            // the connection's state is unknown and it must not be used again.
            let in_doubt = sqlx::query("ROLLBACK").execute(&mut *conn).await.is_err();
            Err(Failed { error: refusal(e, &net), in_doubt })
        }
    }
}
