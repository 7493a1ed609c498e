//! The SQL both backends share, written once and expanded per backend by [`backend!`].
//!
//! SQLite and PostgreSQL accept the same statements here (`$n` placeholders, `ON CONFLICT`,
//! `RETURNING`, row-value comparisons); the only difference is `FOR UPDATE SKIP LOCKED` when
//! taking timers and outbox rows, which PostgreSQL needs for several engine nodes and SQLite
//! (one writer) neither has nor needs. A macro rather than generic functions, because sqlx's
//! driver types share no trait for what is used here (`rows_affected`, typed `try_get`).
//!
//! Writing a batch differs: see `sqlite_commit` (multi-row statements) and `pg_sql::commit`
//! (one call of a PL/pgSQL function).

/// Expands the shared queries for one backend into the current module.
macro_rules! backend {
    ($db:ty, $skip_locked:expr) => {
        use sqlx::{Pool, Row};
        use store::audit::{self, Draft};
        use store::{
            AuditRow, BufferedMessage, DefinitionRow, Error, InboxQuery, InstanceRow, Lease, Millis,
            OutboxRow, Result, Stats, TaskRow, TimerRow,
        };

        use crate::{corrupt, db};

        type DbRow = <$db as sqlx::Database>::Row;

        const SKIP_LOCKED: &str = $skip_locked;

        const INSTANCE_COLUMNS: &str = "id, dealer, process_id, hash, business_key, parent_id, status, outcome, \
             revision, prev_revision, snapshot, started_at, ended_at, audit_seq, audit_hash";
        const TASK_COLUMNS: &str = "id, instance_id, dealer, process_id, step, title_zh, title_en, roles, \
             assignee, priority, due_at, due_key, created_at, business_key, form";
        const AUDIT_COLUMNS: &str =
            "seq, chain, chain_seq, at, actor, kind, step, entry, definition_hash, prev_hash, hash";

        fn instance_row(r: &DbRow) -> Result<InstanceRow> {
            Ok(InstanceRow {
                id: r.try_get("id").map_err(db)?,
                dealer: r.try_get("dealer").map_err(db)?,
                process_id: r.try_get("process_id").map_err(db)?,
                hash: r.try_get("hash").map_err(db)?,
                business_key: r.try_get("business_key").map_err(db)?,
                parent_id: r.try_get("parent_id").map_err(db)?,
                status: r.try_get("status").map_err(db)?,
                outcome: r.try_get("outcome").map_err(db)?,
                revision: r.try_get("revision").map_err(db)?,
                snapshot: r.try_get("snapshot").map_err(db)?,
                started_at: r.try_get("started_at").map_err(db)?,
                ended_at: r.try_get("ended_at").map_err(db)?,
                audit_seq: r.try_get("audit_seq").map_err(db)?,
                audit_hash: r.try_get("audit_hash").map_err(db)?,
            })
        }

        fn task_row(r: &DbRow) -> Result<TaskRow> {
            let roles: String = r.try_get("roles").map_err(db)?;
            Ok(TaskRow {
                id: r.try_get("id").map_err(db)?,
                instance_id: r.try_get("instance_id").map_err(db)?,
                dealer: r.try_get("dealer").map_err(db)?,
                process_id: r.try_get("process_id").map_err(db)?,
                step: r.try_get("step").map_err(db)?,
                title_zh: r.try_get("title_zh").map_err(db)?,
                title_en: r.try_get("title_en").map_err(db)?,
                roles: serde_json::from_str(&roles).map_err(|e| corrupt("tasks", e))?,
                assignee: r.try_get("assignee").map_err(db)?,
                priority: r.try_get("priority").map_err(db)?,
                due_at: r.try_get("due_at").map_err(db)?,
                created_at: r.try_get("created_at").map_err(db)?,
                business_key: r.try_get("business_key").map_err(db)?,
                form: r.try_get("form").map_err(db)?,
            })
        }

        fn timer_row(r: &DbRow) -> Result<TimerRow> {
            Ok(TimerRow {
                id: r.try_get("id").map_err(db)?,
                instance_id: r.try_get("instance_id").map_err(db)?,
                dealer: r.try_get("dealer").map_err(db)?,
                fire_at: r.try_get("fire_at").map_err(db)?,
            })
        }

        fn audit_row(r: &DbRow) -> Result<AuditRow> {
            Ok(AuditRow {
                seq: r.try_get("seq").map_err(db)?,
                chain: r.try_get("chain").map_err(db)?,
                chain_seq: r.try_get("chain_seq").map_err(db)?,
                at: r.try_get("at").map_err(db)?,
                actor: r.try_get("actor").map_err(db)?,
                kind: r.try_get("kind").map_err(db)?,
                step: r.try_get("step").map_err(db)?,
                entry: r.try_get("entry").map_err(db)?,
                definition_hash: r.try_get("definition_hash").map_err(db)?,
                prev_hash: r.try_get("prev_hash").map_err(db)?,
                hash: r.try_get("hash").map_err(db)?,
            })
        }

        fn buffered_row(r: &DbRow) -> Result<BufferedMessage> {
            Ok(BufferedMessage {
                id: r.try_get("id").map_err(db)?,
                dealer: r.try_get("dealer").map_err(db)?,
                name: r.try_get("name").map_err(db)?,
                key: r.try_get("key").map_err(db)?,
                payload: r.try_get("payload").map_err(db)?,
                at: r.try_get("at").map_err(db)?,
            })
        }

        pub(crate) async fn put_definition(pool: &Pool<$db>, d: &DefinitionRow) -> Result<bool> {
            let r = sqlx::query(
                "INSERT INTO definitions (hash, process_id, version, pack_id, pack_version, document, deployed_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (hash) DO NOTHING",
            )
            .bind(&d.hash)
            .bind(&d.process_id)
            .bind(d.version)
            .bind(&d.pack_id)
            .bind(&d.pack_version)
            .bind(&d.document)
            .bind(d.deployed_at)
            .execute(pool)
            .await
            .map_err(db)?;
            Ok(r.rows_affected() == 1)
        }

        pub(crate) async fn definition(pool: &Pool<$db>, hash: &str) -> Result<Option<DefinitionRow>> {
            let row = sqlx::query(
                "SELECT hash, process_id, version, pack_id, pack_version, document, deployed_at \
                 FROM definitions WHERE hash = $1",
            )
            .bind(hash)
            .fetch_optional(pool)
            .await
            .map_err(db)?;
            let Some(r) = row else { return Ok(None) };
            Ok(Some(DefinitionRow {
                hash: r.try_get("hash").map_err(db)?,
                process_id: r.try_get("process_id").map_err(db)?,
                version: r.try_get("version").map_err(db)?,
                pack_id: r.try_get("pack_id").map_err(db)?,
                pack_version: r.try_get("pack_version").map_err(db)?,
                document: r.try_get("document").map_err(db)?,
                deployed_at: r.try_get("deployed_at").map_err(db)?,
            }))
        }

        async fn newest(pool: &Pool<$db>, dealer: &str, process_id: &str) -> Result<Option<String>> {
            sqlx::query_scalar(
                "SELECT hash FROM deployments WHERE dealer = $1 AND process_id = $2 ORDER BY seq DESC LIMIT 1",
            )
            .bind(dealer)
            .bind(process_id)
            .fetch_optional(pool)
            .await
            .map_err(db)
        }

        pub(crate) async fn deploy(
            pool: &Pool<$db>,
            dealer: &str,
            process_id: &str,
            hash: &str,
            at: Millis,
        ) -> Result<bool> {
            if newest(pool, dealer, process_id).await?.as_deref() == Some(hash) {
                return Ok(false);
            }
            sqlx::query("INSERT INTO deployments (dealer, process_id, hash, deployed_at) VALUES ($1, $2, $3, $4)")
                .bind(dealer)
                .bind(process_id)
                .bind(hash)
                .bind(at)
                .execute(pool)
                .await
                .map_err(db)?;
            Ok(true)
        }

        pub(crate) async fn current_deployment(
            pool: &Pool<$db>,
            dealer: &str,
            process_id: &str,
        ) -> Result<Option<String>> {
            if let Some(h) = newest(pool, dealer, process_id).await? {
                return Ok(Some(h));
            }
            if dealer.is_empty() {
                return Ok(None);
            }
            newest(pool, "", process_id).await
        }

        pub(crate) async fn instance(pool: &Pool<$db>, id: &str) -> Result<Option<InstanceRow>> {
            let sql = format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE id = $1");
            let row = sqlx::query(&sql).bind(id).fetch_optional(pool).await.map_err(db)?;
            row.as_ref().map(instance_row).transpose()
        }

        pub(crate) async fn take_due_timers(pool: &Pool<$db>, lease: &Lease) -> Result<Vec<TimerRow>> {
            let sql = format!(
                "UPDATE timers SET owner = $1, lease_until = $2 WHERE id IN (\
                 SELECT id FROM timers WHERE fire_at <= $3 AND (lease_until IS NULL OR lease_until <= $3) \
                 ORDER BY fire_at, id LIMIT $4{SKIP_LOCKED}) RETURNING id, instance_id, dealer, fire_at"
            );
            let rows = sqlx::query(&sql)
                .bind(&lease.owner)
                .bind(lease.until)
                .bind(lease.now)
                .bind(i64::from(lease.limit))
                .fetch_all(pool)
                .await
                .map_err(db)?;
            let mut out = rows.iter().map(timer_row).collect::<Result<Vec<_>>>()?;
            // RETURNING promises no order.
            out.sort_by(|a, b| (a.fire_at, &a.id).cmp(&(b.fire_at, &b.id)));
            Ok(out)
        }

        pub(crate) async fn next_timer_at(pool: &Pool<$db>) -> Result<Option<Millis>> {
            sqlx::query_scalar("SELECT fire_at FROM timers ORDER BY fire_at LIMIT 1")
                .fetch_optional(pool)
                .await
                .map_err(db)
        }

        pub(crate) async fn take_outbox(pool: &Pool<$db>, lease: &Lease) -> Result<Vec<OutboxRow>> {
            let sql = format!(
                "UPDATE outbox SET owner = $1, lease_until = $2, attempts = attempts + 1 WHERE seq IN (\
                 SELECT seq FROM outbox WHERE available_at <= $3 AND (lease_until IS NULL OR lease_until <= $3) \
                 ORDER BY seq LIMIT $4{SKIP_LOCKED}) \
                 RETURNING seq, instance_id, dealer, effect, idempotency_key, attempts"
            );
            let rows = sqlx::query(&sql)
                .bind(&lease.owner)
                .bind(lease.until)
                .bind(lease.now)
                .bind(i64::from(lease.limit))
                .fetch_all(pool)
                .await
                .map_err(db)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(OutboxRow {
                    seq: r.try_get("seq").map_err(db)?,
                    instance_id: r.try_get("instance_id").map_err(db)?,
                    dealer: r.try_get("dealer").map_err(db)?,
                    effect: r.try_get("effect").map_err(db)?,
                    idempotency_key: r.try_get("idempotency_key").map_err(db)?,
                    attempts: r.try_get("attempts").map_err(db)?,
                });
            }
            out.sort_by_key(|o| o.seq);
            Ok(out)
        }

        pub(crate) async fn defer_outbox(pool: &Pool<$db>, seq: i64, available_at: Millis) -> Result<()> {
            sqlx::query("UPDATE outbox SET available_at = $1, owner = NULL, lease_until = NULL WHERE seq = $2")
                .bind(available_at)
                .bind(seq)
                .execute(pool)
                .await
                .map_err(db)?;
            Ok(())
        }

        pub(crate) async fn release_leases(pool: &Pool<$db>) -> Result<()> {
            let mut tx = pool.begin().await.map_err(db)?;
            sqlx::query("UPDATE timers SET owner = NULL, lease_until = NULL WHERE lease_until IS NOT NULL")
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            sqlx::query("UPDATE outbox SET owner = NULL, lease_until = NULL WHERE lease_until IS NOT NULL")
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)
        }

        pub(crate) async fn subscribers(
            pool: &Pool<$db>,
            dealer: &str,
            name: &str,
            key: Option<&str>,
        ) -> Result<Vec<String>> {
            sqlx::query_scalar(
                "SELECT DISTINCT instance_id FROM subscriptions WHERE dealer = $1 AND name = $2 \
                 AND (key IS NULL OR key = $3) ORDER BY instance_id",
            )
            .bind(dealer)
            .bind(name)
            .bind(key)
            .fetch_all(pool)
            .await
            .map_err(db)
        }

        pub(crate) async fn buffered_message(
            pool: &Pool<$db>,
            dealer: &str,
            name: &str,
            key: Option<&str>,
        ) -> Result<Option<BufferedMessage>> {
            let row = sqlx::query(
                "SELECT id, dealer, name, key, payload, at FROM buffered_messages \
                 WHERE dealer = $1 AND name = $2 AND ($3 IS NULL OR key = $3) ORDER BY id LIMIT 1",
            )
            .bind(dealer)
            .bind(name)
            .bind(key)
            .fetch_optional(pool)
            .await
            .map_err(db)?;
            row.as_ref().map(buffered_row).transpose()
        }

        pub(crate) async fn task(pool: &Pool<$db>, id: &str) -> Result<Option<TaskRow>> {
            let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1");
            let row = sqlx::query(&sql).bind(id).fetch_optional(pool).await.map_err(db)?;
            row.as_ref().map(task_row).transpose()
        }

        /// One statement: a sorted, limited index range per role (unclaimed tasks) and one for
        /// the user's own tasks, glued with `UNION ALL`, then merged here.
        pub(crate) async fn inbox_page(pool: &Pool<$db>, q: &InboxQuery) -> Result<Vec<TaskRow>> {
            let (after_key, after_id) = match &q.after {
                Some(c) => (c.due_key, c.task_id.as_str()),
                None => (Millis::MIN, ""),
            };
            let columns = "t.id, t.instance_id, t.dealer, t.process_id, t.step, t.title_zh, t.title_en, t.roles, \
                           t.assignee, t.priority, t.due_at, t.due_key, t.created_at, t.business_key, t.form";
            // Without a process filter, each range is read from its index alone (keys only), the
            // ranges are merged inside the statement, and only the page's rows are read from
            // `tasks`: 50 row reads instead of 50 per range, which on a cold page is most of the
            // time. With the filter, the rows are needed to filter, so each range joins them.
            let keys_only = q.process_id.is_none();
            // `$5`, the process, is bound either way (NULL without the filter).
            let (range_columns, own_columns, candidates, process) = if keys_only {
                ("c.due_key, c.task_id AS id", "t.due_key, t.id", "task_candidates c", "$5 IS NULL")
            } else {
                (columns, columns, "task_candidates c JOIN tasks t ON t.id = c.task_id", "t.process_id = $5")
            };
            let mut parts = Vec::new();
            for i in 0..q.roles.len() {
                parts.push(format!(
                    "SELECT * FROM (SELECT {range_columns} FROM {candidates} \
                     WHERE c.dealer = $1 AND c.role = ${} AND (c.due_key, c.task_id) > ($2, $3) \
                     AND {process} ORDER BY c.due_key, c.task_id LIMIT $4) AS r{i}",
                    i + 6
                ));
            }
            if q.user.is_some() {
                parts.push(format!(
                    "SELECT * FROM (SELECT {own_columns} FROM tasks t WHERE t.dealer = $1 AND t.assignee = ${} \
                     AND (t.due_key, t.id) > ($2, $3) AND {process} \
                     ORDER BY t.due_key, t.id LIMIT $4) AS mine",
                    q.roles.len() + 6
                ));
            }
            if parts.is_empty() {
                return Ok(Vec::new());
            }
            let mut sql = parts.join(" UNION ALL ");
            if keys_only {
                // A task offered to two of the caller's roles is in two ranges: count it once.
                sql = format!(
                    "SELECT {columns} FROM tasks t WHERE t.id IN \
                     (SELECT id FROM (SELECT DISTINCT due_key, id FROM ({sql}) AS u) AS k ORDER BY due_key, id LIMIT $4)"
                );
            }
            let mut query = sqlx::query(&sql)
                .bind(&q.dealer)
                .bind(after_key)
                .bind(after_id)
                .bind(i64::from(q.limit))
                .bind(&q.process_id);
            for role in &q.roles {
                query = query.bind(role);
            }
            if let Some(user) = &q.user {
                query = query.bind(user);
            }
            let rows = query.fetch_all(pool).await.map_err(db)?;
            let rows = rows.iter().map(task_row).collect::<Result<Vec<_>>>()?;
            Ok(store::merge_inbox(vec![rows], q))
        }

        pub(crate) async fn append_audit(pool: &Pool<$db>, draft: Draft, at: Millis) -> Result<AuditRow> {
            let mut tx = pool.begin().await.map_err(db)?;
            let row = append_audit_in(&mut tx, draft, at).await?;
            tx.commit().await.map_err(db)?;
            Ok(row)
        }

        /// Appends an entry inside the caller's transaction, after the head of its chain read
        /// in that transaction. A position taken meanwhile (a unique violation) is
        /// [`Error::Conflict`] on the chain.
        pub(crate) async fn append_audit_in(
            conn: &mut <$db as sqlx::Database>::Connection,
            draft: Draft,
            at: Millis,
        ) -> Result<AuditRow> {
            let head = sqlx::query("SELECT chain_seq, hash FROM audit WHERE chain = $1 ORDER BY chain_seq DESC LIMIT 1")
                .bind(&draft.chain)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db)?;
            let (prev_seq, prev_hash): (i64, String) = match head {
                Some(r) => (r.try_get("chain_seq").map_err(db)?, r.try_get("hash").map_err(db)?),
                None => (0, audit::GENESIS.to_string()),
            };
            let mut row = audit::seal(draft, at, prev_seq, &prev_hash);
            let inserted = sqlx::query(
                "INSERT INTO audit (chain, chain_seq, at, actor, kind, step, entry, definition_hash, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING seq",
            )
            .bind(&row.chain)
            .bind(row.chain_seq)
            .bind(row.at)
            .bind(&row.actor)
            .bind(&row.kind)
            .bind(&row.step)
            .bind(&row.entry)
            .bind(&row.definition_hash)
            .bind(&row.prev_hash)
            .bind(&row.hash)
            .fetch_one(&mut *conn)
            .await;
            match inserted {
                Ok(r) => row.seq = r.try_get("seq").map_err(db)?,
                Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                    return Err(Error::Conflict { instances: vec![row.chain] });
                }
                Err(e) => return Err(db(e)),
            }
            Ok(row)
        }

        pub(crate) async fn audit_chain(pool: &Pool<$db>, chain: &str) -> Result<Vec<AuditRow>> {
            let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit WHERE chain = $1 ORDER BY chain_seq");
            let rows = sqlx::query(&sql).bind(chain).fetch_all(pool).await.map_err(db)?;
            rows.iter().map(audit_row).collect()
        }

        pub(crate) async fn audit_since(pool: &Pool<$db>, after: i64, limit: u32) -> Result<Vec<AuditRow>> {
            let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2");
            let rows = sqlx::query(&sql).bind(after).bind(i64::from(limit)).fetch_all(pool).await.map_err(db)?;
            rows.iter().map(audit_row).collect()
        }

        pub(crate) async fn audit_scan(
            pool: &Pool<$db>,
            after: Option<(String, i64)>,
            limit: u32,
        ) -> Result<Vec<AuditRow>> {
            let (chain, seq) = after.unwrap_or_default();
            let sql = format!(
                "SELECT {AUDIT_COLUMNS} FROM audit WHERE (chain, chain_seq) > ($1, $2) \
                 ORDER BY chain, chain_seq LIMIT $3"
            );
            let rows =
                sqlx::query(&sql).bind(chain).bind(seq).bind(i64::from(limit)).fetch_all(pool).await.map_err(db)?;
            rows.iter().map(audit_row).collect()
        }

        pub(crate) async fn stats(pool: &Pool<$db>) -> Result<Stats> {
            let count = |sql: &'static str| async move {
                sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await.map_err(db)
            };
            Ok(Stats {
                instances: count("SELECT COUNT(*) FROM instances").await?,
                running: count("SELECT COUNT(*) FROM instances WHERE status <> 'ended'").await?,
                tasks: count("SELECT COUNT(*) FROM tasks").await?,
                timers: count("SELECT COUNT(*) FROM timers").await?,
                outbox: count("SELECT COUNT(*) FROM outbox").await?,
                audit: count("SELECT COUNT(*) FROM audit").await?,
            })
        }

        /// One aggregation of open tasks into groups, with the overdue and due-soon splits.
        async fn load_groups(
            pool: &Pool<$db>,
            key: &str,
            from_where: &str,
            dealer: Option<&str>,
            q: &store::report::WorkloadQuery,
        ) -> Result<Vec<store::report::Group>> {
            let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                "SELECT {key} AS k, COUNT(*) AS n, COALESCE(SUM(CASE WHEN due_key < "
            ));
            qb.push_bind(q.now).push(" THEN 1 ELSE 0 END), 0) AS overdue, COALESCE(SUM(CASE WHEN due_key >= ");
            qb.push_bind(q.now).push(" AND due_key < ").push_bind(q.soon);
            qb.push(" THEN 1 ELSE 0 END), 0) AS soon FROM ").push(from_where);
            if let Some(d) = dealer {
                qb.push(" AND dealer = ").push_bind(d.to_string());
            }
            qb.push(format!(" GROUP BY {key} ORDER BY {key}"));
            let rows = qb.build().fetch_all(pool).await.map_err(db)?;
            rows.iter()
                .map(|r| {
                    Ok(store::report::Group {
                        key: r.try_get("k").map_err(db)?,
                        load: store::report::Load {
                            open: r.try_get("n").map_err(db)?,
                            overdue: r.try_get("overdue").map_err(db)?,
                            due_soon: r.try_get("soon").map_err(db)?,
                        },
                    })
                })
                .collect()
        }

        pub(crate) async fn workload(
            pool: &Pool<$db>,
            q: &store::report::WorkloadQuery,
        ) -> Result<store::report::Workload> {
            let mut w = store::report::Workload::default();
            match &q.dealer {
                // The pool per role is one range of `task_candidates_inbox` per role, the held
                // tasks one range of `tasks_assignee` per person: both covering indexes.
                Some(d) => {
                    w.by_role = load_groups(pool, "role", "task_candidates WHERE 1 = 1", Some(d), q).await?;
                    w.by_assignee =
                        load_groups(pool, "assignee", "tasks WHERE assignee IS NOT NULL", Some(d), q).await?;
                    // One range of `tasks_dealer_due`.
                    let all = load_groups(pool, "dealer", "tasks WHERE 1 = 1", Some(d), q).await?;
                    w.total = all.first().map(|g| g.load).unwrap_or_default();
                }
                None => {
                    w.by_dealer = load_groups(pool, "dealer", "tasks WHERE 1 = 1", None, q).await?;
                    w.total = w.by_dealer.iter().fold(store::report::Load::default(), |acc, g| acc.plus(g.load));
                }
            }
            Ok(w)
        }

        pub(crate) async fn overdue_tasks(pool: &Pool<$db>, q: &store::report::OverdueQuery) -> Result<Vec<TaskRow>> {
            let mut qb = sqlx::QueryBuilder::<$db>::new(format!("SELECT {TASK_COLUMNS} FROM tasks WHERE due_key < "));
            qb.push_bind(q.now);
            if let Some(d) = &q.dealer {
                qb.push(" AND dealer = ").push_bind(d.clone());
            }
            if let Some(a) = &q.after {
                qb.push(" AND (due_key, id) > (").push_bind(a.due_key).push(", ").push_bind(a.task_id.clone());
                qb.push(")");
            }
            qb.push(" ORDER BY due_key, id LIMIT ").push_bind(i64::from(q.limit));
            let rows = qb.build().fetch_all(pool).await.map_err(db)?;
            rows.iter().map(task_row).collect()
        }

        pub(crate) async fn instances_in_period(
            pool: &Pool<$db>,
            q: &store::report::PeriodQuery,
        ) -> Result<Vec<InstanceRow>> {
            let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                "SELECT {INSTANCE_COLUMNS} FROM instances WHERE started_at < "
            ));
            qb.push_bind(q.to).push(" AND (ended_at IS NULL OR ended_at >= ").push_bind(q.from).push(")");
            if let Some(d) = &q.dealer {
                qb.push(" AND dealer = ").push_bind(d.clone());
            }
            if let Some(a) = &q.after {
                qb.push(" AND id > ").push_bind(a.clone());
            }
            qb.push(" ORDER BY id LIMIT ").push_bind(i64::from(q.limit));
            let rows = qb.build().fetch_all(pool).await.map_err(db)?;
            rows.iter().map(instance_row).collect()
        }

        pub(crate) async fn audit_of_chains(pool: &Pool<$db>, chains: &[String]) -> Result<Vec<AuditRow>> {
            if chains.is_empty() {
                return Ok(Vec::new());
            }
            let mut qb =
                sqlx::QueryBuilder::<$db>::new(format!("SELECT {AUDIT_COLUMNS} FROM audit WHERE chain IN ("));
            let mut list = qb.separated(", ");
            for c in chains {
                list.push_bind(c.clone());
            }
            list.push_unseparated(") ORDER BY chain, chain_seq");
            let rows = qb.build().fetch_all(pool).await.map_err(db)?;
            rows.iter().map(audit_row).collect()
        }
    };
}

pub(crate) use backend;
