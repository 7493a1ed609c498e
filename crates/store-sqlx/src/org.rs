//! The directory ([`store::org::OrgStore`]) and the inbox and instance searches
//! ([`store::search::SearchStore`]) on SQLite and PostgreSQL, written once like `sql.rs` and
//! expanded per backend. [`AnyOrgStore`] is the directory of whichever database was opened (in
//! memory for `memory:`).
//!
//! The inbox search reads one range of the `task_candidates_inbox` index per role, and the
//! assignee's range of `tasks_assignee`, each cut at the page size, then merges them: a page
//! costs `O(roles × limit)` rows however many tasks are open. Filters other than the due bound
//! are checked on the rows a range yields, so a rare filter value scans more of the range.

use store::org::{Authenticated, Begun, IdempotencyRow, MemoryOrgStore, OrgStore, OrganisationRow, TokenRow, UserRow};
use store::report::{OverdueQuery, PeriodQuery, ReportStore, Workload, WorkloadQuery};
use store::search::{CountQuery, InboxCounts, InstanceSearch, InstanceSummary, SearchStore, TaskSearch};
use store::{AuditRow, InstanceRow, Millis, Result, TaskRow};

use crate::{AnyStore, PgStore, SqliteStore};

/// Expands the directory and search queries for one backend into the current module.
macro_rules! org_backend {
    ($db:ty) => {
        use sqlx::{Pool, QueryBuilder, Row};
        use store::org::{Authenticated, Begun, IdempotencyRow, OrganisationRow, TokenRow, UserRow, judge};
        use store::search::{CountQuery, InboxCounts, InstanceSearch, InstanceSummary, TaskSearch, merge_page};
        use store::{Millis, Result, TaskRow};

        use crate::{corrupt, db};

        type DbRow = <$db as sqlx::Database>::Row;

        const TASK_COLUMNS: &str = "t.id, t.instance_id, t.dealer, t.process_id, t.step, t.title_zh, t.title_en, \
             t.roles, t.assignee, t.priority, t.due_at, t.created_at, t.business_key, t.form";
        const USER_COLUMNS: &str = "id, organisation, name, roles, admin, password_hash, lang, active, created_at";
        const TOKEN_COLUMNS: &str = "id, hash, user_id, label, created_at, expires_at, revoked_at";

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

        /// A task as one element of `PAGE_ROWS`: the columns of `TASK_COLUMNS` in order.
        type PackedTask = (
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            Vec<String>,
            Option<String>,
            String,
            Option<Millis>,
            Millis,
            Option<String>,
            Option<String>,
        );

        fn unpack(t: PackedTask) -> TaskRow {
            let (id, instance_id, dealer, process_id, step, title_zh, title_en, roles) = (t.0, t.1, t.2, t.3, t.4, t.5, t.6, t.7);
            let (assignee, priority, due_at, created_at, business_key, form) = (t.8, t.9, t.10, t.11, t.12, t.13);
            TaskRow {
                id,
                instance_id,
                dealer,
                process_id,
                step,
                title_zh,
                title_en,
                roles,
                assignee,
                priority,
                due_at,
                created_at,
                business_key,
                form,
            }
        }

        fn org_row(r: &DbRow) -> Result<OrganisationRow> {
            Ok(OrganisationRow {
                id: r.try_get("id").map_err(db)?,
                kind: r.try_get("kind").map_err(db)?,
                name: r.try_get("name").map_err(db)?,
                time_zone: r.try_get("time_zone").map_err(db)?,
                created_at: r.try_get("created_at").map_err(db)?,
            })
        }

        fn user_row(r: &DbRow) -> Result<UserRow> {
            let roles: String = r.try_get("roles").map_err(db)?;
            Ok(UserRow {
                id: r.try_get("id").map_err(db)?,
                organisation: r.try_get("organisation").map_err(db)?,
                name: r.try_get("name").map_err(db)?,
                roles: serde_json::from_str(&roles).map_err(|e| corrupt("users", e))?,
                admin: r.try_get("admin").map_err(db)?,
                password_hash: r.try_get("password_hash").map_err(db)?,
                lang: r.try_get("lang").map_err(db)?,
                active: r.try_get("active").map_err(db)?,
                created_at: r.try_get("created_at").map_err(db)?,
            })
        }

        fn token_row(r: &DbRow) -> Result<TokenRow> {
            Ok(TokenRow {
                id: r.try_get("id").map_err(db)?,
                hash: r.try_get("hash").map_err(db)?,
                user_id: r.try_get("user_id").map_err(db)?,
                label: r.try_get("label").map_err(db)?,
                created_at: r.try_get("created_at").map_err(db)?,
                expires_at: r.try_get("expires_at").map_err(db)?,
                revoked_at: r.try_get("revoked_at").map_err(db)?,
            })
        }

        fn idempotency_row(r: &DbRow) -> Result<IdempotencyRow> {
            Ok(IdempotencyRow {
                scope: r.try_get("scope").map_err(db)?,
                key: r.try_get("key").map_err(db)?,
                request_hash: r.try_get("request_hash").map_err(db)?,
                status: r.try_get("status").map_err(db)?,
                response: r.try_get("response").map_err(db)?,
                created_at: r.try_get("created_at").map_err(db)?,
            })
        }

        /// `%text%` for LIKE, lower-cased, with the wildcards of the text escaped.
        fn like_pattern(text: &str) -> String {
            let mut p = String::from("%");
            for c in text.to_ascii_lowercase().chars() {
                if matches!(c, '%' | '_' | '\\') {
                    p.push('\\');
                }
                p.push(c);
            }
            p.push('%');
            p
        }

        /// The filters a range does not give: process, priority, due bound and text.
        fn push_filters(qb: &mut QueryBuilder<'_, $db>, q: &TaskSearch, due_col: &str) {
            if let Some(p) = &q.process_id {
                qb.push(" AND t.process_id = ").push_bind(p.clone());
            }
            if let Some(p) = &q.priority {
                qb.push(" AND t.priority = ").push_bind(p.clone());
            }
            if let Some(r) = &q.role {
                // `roles` is a JSON array of role ids: the quoted id marks membership.
                qb.push(" AND t.roles LIKE ").push_bind(like_pattern(&format!("\"{r}\"")));
                qb.push(" ESCAPE '\\'");
            }
            if let Some(d) = q.due_before {
                qb.push(format!(" AND {due_col} < ")).push_bind(d);
            }
            if let Some(text) = &q.text {
                let pattern = like_pattern(text);
                qb.push(" AND (LOWER(COALESCE(t.business_key, '')) LIKE ")
                    .push_bind(pattern.clone())
                    .push(" ESCAPE '\\' OR LOWER(t.title_zh) LIKE ")
                    .push_bind(pattern.clone())
                    .push(" ESCAPE '\\' OR LOWER(t.title_en) LIKE ")
                    .push_bind(pattern)
                    .push(" ESCAPE '\\')");
            }
        }

        async fn fetch_tasks(pool: &Pool<$db>, mut qb: QueryBuilder<'_, $db>) -> Result<Vec<TaskRow>> {
            let rows = qb.build().fetch_all(pool).await.map_err(db)?;
            rows.iter().map(task_row).collect()
        }

        pub(crate) async fn search_tasks(pool: &Pool<$db>, q: &TaskSearch) -> Result<Vec<TaskRow>> {
            let (after_key, after_id) = match &q.after {
                Some(c) => (c.due_key, c.task_id.clone()),
                None => (Millis::MIN, String::new()),
            };
            let limit = i64::from(q.limit);
            // Without filters on the tasks' own columns, the ranges are read from the indexes
            // alone (keys only) and merged inside the statement, and only the page's rows are
            // read from `tasks`: 50 row reads instead of 50 per range.
            let keys_only = q.process_id.is_none() && q.priority.is_none() && q.text.is_none() && q.role.is_none();
            let columns = if keys_only { "c.due_key, c.task_id AS id" } else { TASK_COLUMNS };
            let own_columns = if keys_only { "t.due_key, t.id" } else { TASK_COLUMNS };
            let candidates = if keys_only { "task_candidates c" } else { "task_candidates c JOIN tasks t ON t.id = c.task_id" };
            // One statement, one round trip: each range is a subquery that reads its own index
            // range in order and stops at the page size; the union is merged here.
            // With `PAGE_ROWS`, the page comes back as one row holding a JSON array of rows.
            let mut qb = QueryBuilder::<$db>::new(if keys_only {
                let page = PAGE_ROWS.map_or_else(|| TASK_COLUMNS.to_owned(), |rows| format!("{rows} AS page"));
                // A task offered to two of the caller's roles is in two ranges: count it once.
                format!("SELECT {page} FROM tasks t WHERE t.id IN (SELECT id FROM (SELECT DISTINCT due_key, id FROM (")
            } else {
                String::new()
            });
            let mut n_ranges = 0;
            for role in q.roles.iter().filter(|r| q.role.as_ref().is_none_or(|x| x == *r)) {
                if n_ranges > 0 {
                    qb.push(" UNION ALL ");
                }
                qb.push(format!("SELECT * FROM (SELECT {columns} FROM {candidates} WHERE c.dealer = "));
                qb.push_bind(q.dealer.clone()).push(" AND c.role = ").push_bind(role.clone());
                qb.push(" AND (c.due_key, c.task_id) > (").push_bind(after_key).push(", ");
                qb.push_bind(after_id.clone()).push(")");
                push_filters(&mut qb, q, "c.due_key");
                qb.push(" ORDER BY c.due_key, c.task_id LIMIT ").push_bind(limit);
                qb.push(format!(") r{n_ranges}"));
                n_ranges += 1;
            }
            if q.user.is_some() || q.all_assigned {
                if n_ranges > 0 {
                    qb.push(" UNION ALL ");
                }
                qb.push(format!("SELECT * FROM (SELECT {own_columns} FROM tasks t WHERE t.dealer = "));
                qb.push_bind(q.dealer.clone());
                match (&q.user, q.all_assigned) {
                    (_, true) => {
                        qb.push(" AND t.assignee IS NOT NULL");
                    }
                    (Some(u), false) => {
                        qb.push(" AND t.assignee = ").push_bind(u.clone());
                    }
                    (None, false) => {}
                }
                qb.push(" AND (t.due_key, t.id) > (").push_bind(after_key).push(", ");
                qb.push_bind(after_id.clone()).push(")");
                push_filters(&mut qb, q, "t.due_key");
                qb.push(" ORDER BY t.due_key, t.id LIMIT ").push_bind(limit);
                qb.push(format!(") r{n_ranges}"));
                n_ranges += 1;
            }
            if n_ranges == 0 {
                return Ok(Vec::new());
            }
            if keys_only {
                // Still one statement: the page's ids are chosen from the merged keys inside it.
                qb.push(") u) k ORDER BY due_key, id LIMIT ").push_bind(limit).push(")");
            }
            if keys_only && PAGE_ROWS.is_some() {
                let row = qb.build().fetch_one(pool).await.map_err(db)?;
                let page: String = row.try_get("page").map_err(db)?;
                let packed: Vec<PackedTask> = serde_json::from_str(&page).map_err(|e| corrupt("tasks", e))?;
                return Ok(merge_page(vec![packed.into_iter().map(unpack).collect()], q.limit));
            }
            Ok(merge_page(vec![fetch_tasks(pool, qb).await?], q.limit))
        }

        pub(crate) async fn count_tasks(pool: &Pool<$db>, q: &CountQuery) -> Result<InboxCounts> {
            let mut c = InboxCounts::default();
            if !q.roles.is_empty() {
                let mut qb = QueryBuilder::<$db>::new("SELECT COUNT(*) AS n, COALESCE(SUM(CASE WHEN d < ");
                qb.push_bind(q.now).push(" THEN 1 ELSE 0 END), 0) AS overdue, COALESCE(SUM(CASE WHEN d < ");
                qb.push_bind(q.end_of_day).push(" THEN 1 ELSE 0 END), 0) AS today FROM (");
                qb.push("SELECT DISTINCT c.task_id, c.due_key AS d FROM task_candidates c");
                if q.process_id.is_some() {
                    qb.push(" JOIN tasks t ON t.id = c.task_id");
                }
                qb.push(" WHERE c.dealer = ").push_bind(q.dealer.clone()).push(" AND c.role IN (");
                let mut sep = qb.separated(", ");
                for r in &q.roles {
                    sep.push_bind(r.clone());
                }
                sep.push_unseparated(")");
                if let Some(p) = &q.process_id {
                    qb.push(" AND t.process_id = ").push_bind(p.clone());
                }
                qb.push(") x");
                let r = qb.build().fetch_one(pool).await.map_err(db)?;
                c.unassigned = r.try_get("n").map_err(db)?;
                c.overdue += r.try_get::<i64, _>("overdue").map_err(db)?;
                c.due_today += r.try_get::<i64, _>("today").map_err(db)?;
            }
            if q.user.is_some() || q.all_assigned {
                let mut qb = QueryBuilder::<$db>::new("SELECT COUNT(*) AS n, COALESCE(SUM(CASE WHEN t.due_key < ");
                qb.push_bind(q.now).push(" THEN 1 ELSE 0 END), 0) AS overdue, COALESCE(SUM(CASE WHEN t.due_key < ");
                qb.push_bind(q.end_of_day).push(" THEN 1 ELSE 0 END), 0) AS today FROM tasks t WHERE t.dealer = ");
                qb.push_bind(q.dealer.clone());
                match (&q.user, q.all_assigned) {
                    (_, true) => {
                        qb.push(" AND t.assignee IS NOT NULL");
                    }
                    (Some(u), false) => {
                        qb.push(" AND t.assignee = ").push_bind(u.clone());
                    }
                    (None, false) => {}
                }
                if let Some(p) = &q.process_id {
                    qb.push(" AND t.process_id = ").push_bind(p.clone());
                }
                let r = qb.build().fetch_one(pool).await.map_err(db)?;
                c.mine = r.try_get("n").map_err(db)?;
                c.overdue += r.try_get::<i64, _>("overdue").map_err(db)?;
                c.due_today += r.try_get::<i64, _>("today").map_err(db)?;
            }
            c.total = c.mine + c.unassigned;
            Ok(c)
        }

        pub(crate) async fn search_instances(pool: &Pool<$db>, q: &InstanceSearch) -> Result<Vec<InstanceSummary>> {
            let mut qb = QueryBuilder::<$db>::new(
                "SELECT id, dealer, process_id, hash, business_key, parent_id, status, outcome, started_at, ended_at \
                 FROM instances WHERE 1 = 1",
            );
            if let Some(d) = &q.dealer {
                qb.push(" AND dealer = ").push_bind(d.clone());
            }
            if let Some(p) = &q.process_id {
                qb.push(" AND process_id = ").push_bind(p.clone());
            }
            match q.status.as_deref() {
                // `running` means not ended, with or without an open incident.
                Some("running") => {
                    qb.push(" AND status <> 'ended'");
                }
                Some(s) => {
                    qb.push(" AND status = ").push_bind(s.to_owned());
                }
                None => {}
            }
            if let Some(b) = &q.before {
                qb.push(" AND id < ").push_bind(b.clone());
            }
            if let Some(text) = &q.text {
                qb.push(" AND LOWER(COALESCE(business_key, '')) LIKE ").push_bind(like_pattern(text));
                qb.push(" ESCAPE '\\'");
            }
            qb.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(q.limit));
            let rows = qb.build().fetch_all(pool).await.map_err(db)?;
            rows.iter()
                .map(|r| {
                    Ok(InstanceSummary {
                        id: r.try_get("id").map_err(db)?,
                        dealer: r.try_get("dealer").map_err(db)?,
                        process_id: r.try_get("process_id").map_err(db)?,
                        hash: r.try_get("hash").map_err(db)?,
                        business_key: r.try_get("business_key").map_err(db)?,
                        parent_id: r.try_get("parent_id").map_err(db)?,
                        status: r.try_get("status").map_err(db)?,
                        outcome: r.try_get("outcome").map_err(db)?,
                        started_at: r.try_get("started_at").map_err(db)?,
                        ended_at: r.try_get("ended_at").map_err(db)?,
                    })
                })
                .collect()
        }

        pub(crate) async fn put_organisation(pool: &Pool<$db>, o: &OrganisationRow) -> Result<bool> {
            let r = sqlx::query(
                "INSERT INTO organisations (id, kind, name, time_zone, created_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&o.id)
            .bind(&o.kind)
            .bind(&o.name)
            .bind(&o.time_zone)
            .bind(o.created_at)
            .execute(pool)
            .await
            .map_err(db)?;
            Ok(r.rows_affected() == 1)
        }

        pub(crate) async fn organisation(pool: &Pool<$db>, id: &str) -> Result<Option<OrganisationRow>> {
            let row = sqlx::query("SELECT id, kind, name, time_zone, created_at FROM organisations WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(db)?;
            row.as_ref().map(org_row).transpose()
        }

        pub(crate) async fn organisations(pool: &Pool<$db>) -> Result<Vec<OrganisationRow>> {
            let rows = sqlx::query("SELECT id, kind, name, time_zone, created_at FROM organisations ORDER BY id")
                .fetch_all(pool)
                .await
                .map_err(db)?;
            rows.iter().map(org_row).collect()
        }

        pub(crate) async fn put_user(pool: &Pool<$db>, u: &UserRow) -> Result<()> {
            sqlx::query(
                "INSERT INTO users (id, organisation, name, roles, admin, password_hash, lang, active, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO UPDATE SET \
                 organisation = excluded.organisation, name = excluded.name, roles = excluded.roles, \
                 admin = excluded.admin, password_hash = excluded.password_hash, lang = excluded.lang, \
                 active = excluded.active",
            )
            .bind(&u.id)
            .bind(&u.organisation)
            .bind(&u.name)
            .bind(serde_json::Value::from(u.roles.clone()).to_string())
            .bind(u.admin)
            .bind(&u.password_hash)
            .bind(&u.lang)
            .bind(u.active)
            .bind(u.created_at)
            .execute(pool)
            .await
            .map_err(db)?;
            Ok(())
        }

        pub(crate) async fn user(pool: &Pool<$db>, id: &str) -> Result<Option<UserRow>> {
            let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(db)?;
            row.as_ref().map(user_row).transpose()
        }

        pub(crate) async fn users(pool: &Pool<$db>, organisation: Option<&str>) -> Result<Vec<UserRow>> {
            let rows = match organisation {
                Some(o) => {
                    sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE organisation = $1 ORDER BY id"))
                        .bind(o)
                        .fetch_all(pool)
                        .await
                }
                None => sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id")).fetch_all(pool).await,
            }
            .map_err(db)?;
            rows.iter().map(user_row).collect()
        }

        pub(crate) async fn put_token(pool: &Pool<$db>, t: &TokenRow) -> Result<()> {
            sqlx::query(&format!("INSERT INTO api_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"))
                .bind(&t.id)
                .bind(&t.hash)
                .bind(&t.user_id)
                .bind(&t.label)
                .bind(t.created_at)
                .bind(t.expires_at)
                .bind(t.revoked_at)
                .execute(pool)
                .await
                .map_err(db)?;
            Ok(())
        }

        pub(crate) async fn authenticate(pool: &Pool<$db>, hash: &str, now: Millis) -> Result<Option<Authenticated>> {
            // One statement: the token, its user and the organisation, by the token's hash.
            let row = sqlx::query(
                "SELECT k.id AS k_id, k.hash AS k_hash, k.user_id AS k_user_id, k.label AS k_label, \
                 k.created_at AS k_created_at, k.expires_at AS k_expires_at, k.revoked_at AS k_revoked_at, \
                 u.id, u.organisation, u.name, u.roles, u.admin, u.password_hash, u.lang, u.active, u.created_at, \
                 o.kind AS o_kind, o.name AS o_name, o.time_zone AS o_time_zone, o.created_at AS o_created_at \
                 FROM api_tokens k JOIN users u ON u.id = k.user_id JOIN organisations o ON o.id = u.organisation \
                 WHERE k.hash = $1",
            )
            .bind(hash)
            .fetch_optional(pool)
            .await
            .map_err(db)?;
            let Some(r) = row else { return Ok(None) };
            let token = TokenRow {
                id: r.try_get("k_id").map_err(db)?,
                hash: r.try_get("k_hash").map_err(db)?,
                user_id: r.try_get("k_user_id").map_err(db)?,
                label: r.try_get("k_label").map_err(db)?,
                created_at: r.try_get("k_created_at").map_err(db)?,
                expires_at: r.try_get("k_expires_at").map_err(db)?,
                revoked_at: r.try_get("k_revoked_at").map_err(db)?,
            };
            let user = user_row(&r)?;
            if !store::org::token_valid(&token, now) || !user.active {
                return Ok(None);
            }
            let organisation = OrganisationRow {
                id: user.organisation.clone(),
                kind: r.try_get("o_kind").map_err(db)?,
                name: r.try_get("o_name").map_err(db)?,
                time_zone: r.try_get("o_time_zone").map_err(db)?,
                created_at: r.try_get("o_created_at").map_err(db)?,
            };
            Ok(Some(Authenticated { token, user, organisation }))
        }

        pub(crate) async fn token(pool: &Pool<$db>, id: &str) -> Result<Option<TokenRow>> {
            let row = sqlx::query(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(db)?;
            row.as_ref().map(token_row).transpose()
        }

        pub(crate) async fn tokens(pool: &Pool<$db>, user_id: &str) -> Result<Vec<TokenRow>> {
            let rows = sqlx::query(&format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY created_at DESC, id DESC"
            ))
            .bind(user_id)
            .fetch_all(pool)
            .await
            .map_err(db)?;
            rows.iter().map(token_row).collect()
        }

        pub(crate) async fn revoke_token(pool: &Pool<$db>, id: &str, at: Millis) -> Result<bool> {
            let r = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(at)
                .bind(id)
                .execute(pool)
                .await
                .map_err(db)?;
            Ok(r.rows_affected() == 1)
        }

        pub(crate) async fn idempotency_begin(pool: &Pool<$db>, row: &IdempotencyRow) -> Result<Begun> {
            let r = sqlx::query(
                "INSERT INTO idempotency (scope, key, request_hash, status, response, created_at) \
                 VALUES ($1, $2, $3, 0, NULL, $4) ON CONFLICT (scope, key) DO NOTHING",
            )
            .bind(&row.scope)
            .bind(&row.key)
            .bind(&row.request_hash)
            .bind(row.created_at)
            .execute(pool)
            .await
            .map_err(db)?;
            if r.rows_affected() == 1 {
                return Ok(Begun::Fresh);
            }
            let found = sqlx::query(
                "SELECT scope, key, request_hash, status, response, created_at FROM idempotency \
                 WHERE scope = $1 AND key = $2",
            )
            .bind(&row.scope)
            .bind(&row.key)
            .fetch_optional(pool)
            .await
            .map_err(db)?;
            match found.as_ref().map(idempotency_row).transpose()? {
                Some(f) => Ok(judge(&f, &row.request_hash)),
                // Purged between the two statements: the key is free again.
                None => Ok(Begun::InProgress),
            }
        }

        pub(crate) async fn idempotency_finish(
            pool: &Pool<$db>,
            scope: &str,
            key: &str,
            status: i64,
            response: &str,
        ) -> Result<()> {
            sqlx::query("UPDATE idempotency SET status = $1, response = $2 WHERE scope = $3 AND key = $4")
                .bind(status)
                .bind(response)
                .bind(scope)
                .bind(key)
                .execute(pool)
                .await
                .map_err(db)?;
            Ok(())
        }

        pub(crate) async fn idempotency_abort(pool: &Pool<$db>, scope: &str, key: &str) -> Result<()> {
            sqlx::query("DELETE FROM idempotency WHERE scope = $1 AND key = $2 AND status = 0")
                .bind(scope)
                .bind(key)
                .execute(pool)
                .await
                .map_err(db)?;
            Ok(())
        }

        pub(crate) async fn idempotency_purge(pool: &Pool<$db>, before: Millis) -> Result<u64> {
            let r = sqlx::query("DELETE FROM idempotency WHERE created_at < $1")
                .bind(before)
                .execute(pool)
                .await
                .map_err(db)?;
            Ok(r.rows_affected())
        }
    };
}

mod sqlite_org {
    /// The rows of an inbox page as one JSON array of arrays (the columns of `TASK_COLUMNS`):
    /// sqlx hands SQLite rows over from the connection's thread one by one, so one value costs
    /// less than fifty rows of fourteen columns.
    const PAGE_ROWS: Option<&str> = Some(
        "json_group_array(json_array(t.id, t.instance_id, t.dealer, t.process_id, t.step, t.title_zh, t.title_en, json(t.roles), t.assignee, t.priority, t.due_at, t.created_at, t.business_key, t.form))",
    );
    org_backend!(sqlx::Sqlite);
}

mod pg_org {
    /// PostgreSQL sends rows over its socket cheaply, and building the JSON there (`json_agg`)
    /// doubled the statement's time: the page comes back as rows.
    const PAGE_ROWS: Option<&str> = None;
    org_backend!(sqlx::Postgres);
}

/// Implements the directory, search and report ports for a SQL store, with reads on `$read`
/// and writes on `$write`.
macro_rules! sql_org_store {
    ($store:ty, $module:ident, $sql:ident, $read:ident, $write:ident) => {
        impl ReportStore for $store {
            async fn workload(&self, q: &WorkloadQuery) -> Result<Workload> {
                crate::$sql::workload(&self.$read, q).await
            }
            async fn overdue_tasks(&self, q: &OverdueQuery) -> Result<Vec<TaskRow>> {
                crate::$sql::overdue_tasks(&self.$read, q).await
            }
            async fn instances_in_period(&self, q: &PeriodQuery) -> Result<Vec<InstanceRow>> {
                crate::$sql::instances_in_period(&self.$read, q).await
            }
            async fn audit_of_chains(&self, chains: &[String]) -> Result<Vec<AuditRow>> {
                crate::$sql::audit_of_chains(&self.$read, chains).await
            }
        }

        impl SearchStore for $store {
            async fn search_tasks(&self, q: &TaskSearch) -> Result<Vec<TaskRow>> {
                $module::search_tasks(&self.$read, q).await
            }
            async fn count_tasks(&self, q: &CountQuery) -> Result<InboxCounts> {
                $module::count_tasks(&self.$read, q).await
            }
            async fn search_instances(&self, q: &InstanceSearch) -> Result<Vec<InstanceSummary>> {
                $module::search_instances(&self.$read, q).await
            }
        }

        impl OrgStore for $store {
            async fn put_organisation(&self, org: &OrganisationRow) -> Result<bool> {
                $module::put_organisation(&*self.$write().await, org).await
            }
            async fn organisation(&self, id: &str) -> Result<Option<OrganisationRow>> {
                $module::organisation(&self.$read, id).await
            }
            async fn organisations(&self) -> Result<Vec<OrganisationRow>> {
                $module::organisations(&self.$read).await
            }
            async fn put_user(&self, user: &UserRow) -> Result<()> {
                $module::put_user(&*self.$write().await, user).await
            }
            async fn user(&self, id: &str) -> Result<Option<UserRow>> {
                $module::user(&self.$read, id).await
            }
            async fn users(&self, organisation: Option<&str>) -> Result<Vec<UserRow>> {
                $module::users(&self.$read, organisation).await
            }
            async fn put_token(&self, token: &TokenRow) -> Result<()> {
                $module::put_token(&*self.$write().await, token).await
            }
            async fn authenticate(&self, hash: &str, now: Millis) -> Result<Option<Authenticated>> {
                $module::authenticate(&self.$read, hash, now).await
            }
            async fn token(&self, id: &str) -> Result<Option<TokenRow>> {
                $module::token(&self.$read, id).await
            }
            async fn tokens(&self, user_id: &str) -> Result<Vec<TokenRow>> {
                $module::tokens(&self.$read, user_id).await
            }
            async fn revoke_token(&self, id: &str, at: Millis) -> Result<bool> {
                $module::revoke_token(&*self.$write().await, id, at).await
            }
            async fn idempotency_begin(&self, row: &IdempotencyRow) -> Result<Begun> {
                $module::idempotency_begin(&*self.$write().await, row).await
            }
            async fn idempotency_finish(&self, scope: &str, key: &str, status: i64, response: &str) -> Result<()> {
                $module::idempotency_finish(&*self.$write().await, scope, key, status, response).await
            }
            async fn idempotency_abort(&self, scope: &str, key: &str) -> Result<()> {
                $module::idempotency_abort(&*self.$write().await, scope, key).await
            }
            async fn idempotency_purge(&self, before: Millis) -> Result<u64> {
                $module::idempotency_purge(&*self.$write().await, before).await
            }
        }
    };
}

sql_org_store!(SqliteStore, sqlite_org, sqlite_sql, read, write_turn);
sql_org_store!(PgStore, pg_org, pg_sql, pool, write_turn);

impl ReportStore for AnyStore {
    async fn workload(&self, q: &WorkloadQuery) -> Result<Workload> {
        match self {
            AnyStore::Memory(s) => s.workload(q).await,
            AnyStore::Sqlite(s) => s.workload(q).await,
            AnyStore::Postgres(s) => s.workload(q).await,
        }
    }
    async fn overdue_tasks(&self, q: &OverdueQuery) -> Result<Vec<TaskRow>> {
        match self {
            AnyStore::Memory(s) => s.overdue_tasks(q).await,
            AnyStore::Sqlite(s) => s.overdue_tasks(q).await,
            AnyStore::Postgres(s) => s.overdue_tasks(q).await,
        }
    }
    async fn instances_in_period(&self, q: &PeriodQuery) -> Result<Vec<InstanceRow>> {
        match self {
            AnyStore::Memory(s) => s.instances_in_period(q).await,
            AnyStore::Sqlite(s) => s.instances_in_period(q).await,
            AnyStore::Postgres(s) => s.instances_in_period(q).await,
        }
    }
    async fn audit_of_chains(&self, chains: &[String]) -> Result<Vec<AuditRow>> {
        match self {
            AnyStore::Memory(s) => s.audit_of_chains(chains).await,
            AnyStore::Sqlite(s) => s.audit_of_chains(chains).await,
            AnyStore::Postgres(s) => s.audit_of_chains(chains).await,
        }
    }
}

impl SearchStore for AnyStore {
    async fn search_tasks(&self, q: &TaskSearch) -> Result<Vec<TaskRow>> {
        match self {
            AnyStore::Memory(s) => s.search_tasks(q).await,
            AnyStore::Sqlite(s) => s.search_tasks(q).await,
            AnyStore::Postgres(s) => s.search_tasks(q).await,
        }
    }
    async fn count_tasks(&self, q: &CountQuery) -> Result<InboxCounts> {
        match self {
            AnyStore::Memory(s) => s.count_tasks(q).await,
            AnyStore::Sqlite(s) => s.count_tasks(q).await,
            AnyStore::Postgres(s) => s.count_tasks(q).await,
        }
    }
    async fn search_instances(&self, q: &InstanceSearch) -> Result<Vec<InstanceSummary>> {
        match self {
            AnyStore::Memory(s) => s.search_instances(q).await,
            AnyStore::Sqlite(s) => s.search_instances(q).await,
            AnyStore::Postgres(s) => s.search_instances(q).await,
        }
    }
}

/// The directory of whichever database was opened: its own tables on SQLite and PostgreSQL,
/// a [`MemoryOrgStore`] beside a memory store.
#[derive(Debug, Clone)]
pub enum AnyOrgStore {
    /// In memory (nothing survives).
    Memory(MemoryOrgStore),
    /// A SQLite file.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PgStore),
}

impl AnyOrgStore {
    /// The directory in the same database as `store` (a fresh one in memory for `memory:`:
    /// create it once and share it).
    pub fn for_store(store: &AnyStore) -> AnyOrgStore {
        match store {
            AnyStore::Memory(_) => AnyOrgStore::Memory(MemoryOrgStore::new()),
            AnyStore::Sqlite(s) => AnyOrgStore::Sqlite(s.clone()),
            AnyStore::Postgres(s) => AnyOrgStore::Postgres(s.clone()),
        }
    }
}

/// Forwards a directory method to whichever store is inside.
macro_rules! any_org {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyOrgStore::Memory($s) => $call.await,
            AnyOrgStore::Sqlite($s) => $call.await,
            AnyOrgStore::Postgres($s) => $call.await,
        }
    };
}

impl OrgStore for AnyOrgStore {
    async fn put_organisation(&self, org: &OrganisationRow) -> Result<bool> {
        any_org!(self, s => s.put_organisation(org))
    }
    async fn organisation(&self, id: &str) -> Result<Option<OrganisationRow>> {
        any_org!(self, s => s.organisation(id))
    }
    async fn organisations(&self) -> Result<Vec<OrganisationRow>> {
        any_org!(self, s => s.organisations())
    }
    async fn put_user(&self, user: &UserRow) -> Result<()> {
        any_org!(self, s => s.put_user(user))
    }
    async fn user(&self, id: &str) -> Result<Option<UserRow>> {
        any_org!(self, s => s.user(id))
    }
    async fn users(&self, organisation: Option<&str>) -> Result<Vec<UserRow>> {
        any_org!(self, s => s.users(organisation))
    }
    async fn put_token(&self, token: &TokenRow) -> Result<()> {
        any_org!(self, s => s.put_token(token))
    }
    async fn authenticate(&self, hash: &str, now: Millis) -> Result<Option<Authenticated>> {
        any_org!(self, s => s.authenticate(hash, now))
    }
    async fn token(&self, id: &str) -> Result<Option<TokenRow>> {
        any_org!(self, s => s.token(id))
    }
    async fn tokens(&self, user_id: &str) -> Result<Vec<TokenRow>> {
        any_org!(self, s => s.tokens(user_id))
    }
    async fn revoke_token(&self, id: &str, at: Millis) -> Result<bool> {
        any_org!(self, s => s.revoke_token(id, at))
    }
    async fn idempotency_begin(&self, row: &IdempotencyRow) -> Result<Begun> {
        any_org!(self, s => s.idempotency_begin(row))
    }
    async fn idempotency_finish(&self, scope: &str, key: &str, status: i64, response: &str) -> Result<()> {
        any_org!(self, s => s.idempotency_finish(scope, key, status, response))
    }
    async fn idempotency_abort(&self, scope: &str, key: &str) -> Result<()> {
        any_org!(self, s => s.idempotency_abort(scope, key))
    }
    async fn idempotency_purge(&self, before: Millis) -> Result<u64> {
        any_org!(self, s => s.idempotency_purge(before))
    }
}
