//! External task jobs ([`plugins::external::JobStore`]) on SQLite and PostgreSQL, in the table
//! `external_jobs` (migrations `0200_external_jobs.sql`), written once and expanded per backend
//! like `sql.rs`. [`AnyJobStore`] is the job store of whichever database was opened (in memory
//! for `memory:`).
//!
//! Concurrency is optimistic, as the port asks: every update is
//! `UPDATE ... WHERE id = $n AND version = $m`, so of two servers that read the same open job,
//! only the first one's lock is saved. Nothing here decides anything about a job (when it is due,
//! who holds it): that is `plugins::external`; this module only stores rows.

use plugin_api::BoxFuture;
use plugins::external::{Error, ExternalJob, JobStore, MemoryJobStore};

use crate::{AnyStore, PgStore, SqliteStore};

/// Expands the job queries for one backend into the current module.
macro_rules! jobs_backend {
    ($db:ty) => {
        use jiff::{SignedDuration, Timestamp};
        use model::RetryPolicy;
        use plugins::external::{Error, ExternalJob, JobState, Lock};
        use sqlx::{Pool, QueryBuilder, Row};

        use crate::{corrupt, db};

        type DbRow = <$db as sqlx::Database>::Row;

        const COLUMNS: &str = "id, job, instance_id, dealer, topic, input, idempotency_key, retry_max_attempts, \
             retry_backoff_ms, retry_max_backoff_ms, failures, due_at, lock_worker, lock_until, state, output, \
             last_error, version";

        fn failed(e: sqlx::Error) -> Error {
            Error::Store(Box::new(db(e)))
        }

        fn bad(e: impl std::fmt::Display) -> Error {
            Error::Store(Box::new(corrupt("external_jobs", e)))
        }

        fn time(ms: i64) -> Result<Timestamp, Error> {
            Timestamp::from_millisecond(ms).map_err(bad)
        }

        fn millis(d: SignedDuration) -> i64 {
            i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
        }

        fn job_of(r: &DbRow) -> Result<ExternalJob, Error> {
            let input: String = r.try_get("input").map_err(failed)?;
            let output: Option<String> = r.try_get("output").map_err(failed)?;
            let state: String = r.try_get("state").map_err(failed)?;
            let state = match (state.as_str(), output) {
                ("open", _) => JobState::Open,
                ("completed", Some(output)) => JobState::Completed(serde_json::from_str(&output).map_err(bad)?),
                ("given_up", _) => JobState::GivenUp,
                (other, _) => return Err(bad(format!("the job state `{other}` is not known or has no output"))),
            };
            let lock_worker: Option<String> = r.try_get("lock_worker").map_err(failed)?;
            let lock_until: Option<i64> = r.try_get("lock_until").map_err(failed)?;
            let lock = match (lock_worker, lock_until) {
                (Some(worker), Some(until)) => Some(Lock { worker, until: time(until)? }),
                _ => None,
            };
            let count = |column: &str| -> Result<u32, Error> {
                let n: i64 = r.try_get(column).map_err(failed)?;
                u32::try_from(n).map_err(bad)
            };
            let version: i64 = r.try_get("version").map_err(failed)?;
            Ok(ExternalJob {
                id: r.try_get("id").map_err(failed)?,
                job: r.try_get("job").map_err(failed)?,
                instance: r.try_get("instance_id").map_err(failed)?,
                dealer: r.try_get("dealer").map_err(failed)?,
                topic: r.try_get("topic").map_err(failed)?,
                input: serde_json::from_str(&input).map_err(bad)?,
                idempotency_key: r.try_get("idempotency_key").map_err(failed)?,
                retry: RetryPolicy {
                    max_attempts: count("retry_max_attempts")?,
                    backoff: SignedDuration::from_millis(r.try_get("retry_backoff_ms").map_err(failed)?),
                    max_backoff: SignedDuration::from_millis(r.try_get("retry_max_backoff_ms").map_err(failed)?),
                },
                failures: count("failures")?,
                due_at: time(r.try_get("due_at").map_err(failed)?)?,
                lock,
                state,
                last_error: r.try_get("last_error").map_err(failed)?,
                version: u64::try_from(version).map_err(bad)?,
            })
        }

        /// The columns of a job as bound values, in [`COLUMNS`] order after `id`.
        struct Values {
            job: String,
            instance: String,
            dealer: String,
            topic: String,
            input: String,
            idempotency_key: String,
            max_attempts: i64,
            backoff_ms: i64,
            max_backoff_ms: i64,
            failures: i64,
            due_at: i64,
            lock_worker: Option<String>,
            lock_until: Option<i64>,
            state: &'static str,
            output: Option<String>,
            last_error: Option<String>,
            version: i64,
        }

        fn values(j: ExternalJob) -> Result<Values, Error> {
            let (state, output) = match &j.state {
                JobState::Open => ("open", None),
                JobState::Completed(v) => ("completed", Some(v.to_string())),
                JobState::GivenUp => ("given_up", None),
            };
            Ok(Values {
                input: j.input.to_string(),
                job: j.job,
                instance: j.instance,
                dealer: j.dealer,
                topic: j.topic,
                idempotency_key: j.idempotency_key,
                max_attempts: i64::from(j.retry.max_attempts),
                backoff_ms: millis(j.retry.backoff),
                max_backoff_ms: millis(j.retry.max_backoff),
                failures: i64::from(j.failures),
                due_at: j.due_at.as_millisecond(),
                lock_until: j.lock.as_ref().map(|l| l.until.as_millisecond()),
                lock_worker: j.lock.map(|l| l.worker),
                state,
                output,
                last_error: j.last_error,
                version: i64::try_from(j.version).map_err(bad)?,
            })
        }

        pub(crate) async fn insert(pool: &Pool<$db>, job: ExternalJob) -> Result<bool, Error> {
            let id = job.id.clone();
            let v = values(job)?;
            let mut qb = QueryBuilder::<$db>::new(format!("INSERT INTO external_jobs ({COLUMNS}) VALUES ("));
            let mut s = qb.separated(", ");
            s.push_bind(id)
                .push_bind(v.job)
                .push_bind(v.instance)
                .push_bind(v.dealer)
                .push_bind(v.topic)
                .push_bind(v.input)
                .push_bind(v.idempotency_key)
                .push_bind(v.max_attempts)
                .push_bind(v.backoff_ms)
                .push_bind(v.max_backoff_ms)
                .push_bind(v.failures)
                .push_bind(v.due_at)
                .push_bind(v.lock_worker)
                .push_bind(v.lock_until)
                .push_bind(v.state)
                .push_bind(v.output)
                .push_bind(v.last_error)
                .push_bind(v.version);
            qb.push(") ON CONFLICT (id) DO NOTHING");
            let done = qb.build().execute(pool).await.map_err(failed)?;
            Ok(done.rows_affected() == 1)
        }

        pub(crate) async fn get(pool: &Pool<$db>, id: &str) -> Result<Option<ExternalJob>, Error> {
            let row = sqlx::query(&format!("SELECT {COLUMNS} FROM external_jobs WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(failed)?;
            row.as_ref().map(job_of).transpose()
        }

        pub(crate) async fn available(
            pool: &Pool<$db>,
            topics: &[String],
            dealer: Option<&str>,
            now: Timestamp,
            limit: usize,
        ) -> Result<Vec<ExternalJob>, Error> {
            if topics.is_empty() || limit == 0 {
                return Ok(Vec::new());
            }
            let now = now.as_millisecond();
            let mut qb = QueryBuilder::<$db>::new(format!(
                "SELECT {COLUMNS} FROM external_jobs WHERE state = 'open' AND topic IN ("
            ));
            let mut s = qb.separated(", ");
            for t in topics {
                s.push_bind(t.clone());
            }
            qb.push(")");
            if let Some(d) = dealer {
                qb.push(" AND dealer = ").push_bind(d.to_owned());
            }
            qb.push(" AND due_at <= ").push_bind(now);
            qb.push(" AND (lock_until IS NULL OR lock_until <= ").push_bind(now).push(")");
            qb.push(" ORDER BY due_at, id LIMIT ").push_bind(i64::try_from(limit).unwrap_or(i64::MAX));
            let rows = qb.build().fetch_all(pool).await.map_err(failed)?;
            rows.iter().map(job_of).collect()
        }

        pub(crate) async fn replace(pool: &Pool<$db>, job: ExternalJob, expected: u64) -> Result<bool, Error> {
            let id = job.id.clone();
            let v = values(job)?;
            let mut qb = QueryBuilder::<$db>::new("UPDATE external_jobs SET ");
            let mut s = qb.separated(", ");
            s.push("job = ").push_bind_unseparated(v.job);
            s.push("instance_id = ").push_bind_unseparated(v.instance);
            s.push("dealer = ").push_bind_unseparated(v.dealer);
            s.push("topic = ").push_bind_unseparated(v.topic);
            s.push("input = ").push_bind_unseparated(v.input);
            s.push("idempotency_key = ").push_bind_unseparated(v.idempotency_key);
            s.push("retry_max_attempts = ").push_bind_unseparated(v.max_attempts);
            s.push("retry_backoff_ms = ").push_bind_unseparated(v.backoff_ms);
            s.push("retry_max_backoff_ms = ").push_bind_unseparated(v.max_backoff_ms);
            s.push("failures = ").push_bind_unseparated(v.failures);
            s.push("due_at = ").push_bind_unseparated(v.due_at);
            s.push("lock_worker = ").push_bind_unseparated(v.lock_worker);
            s.push("lock_until = ").push_bind_unseparated(v.lock_until);
            s.push("state = ").push_bind_unseparated(v.state);
            s.push("output = ").push_bind_unseparated(v.output);
            s.push("last_error = ").push_bind_unseparated(v.last_error);
            s.push("version = ").push_bind_unseparated(v.version);
            qb.push(" WHERE id = ").push_bind(id);
            qb.push(" AND version = ").push_bind(i64::try_from(expected).map_err(bad)?);
            let done = qb.build().execute(pool).await.map_err(failed)?;
            Ok(done.rows_affected() == 1)
        }
    };
}

mod sqlite_jobs {
    jobs_backend!(sqlx::Sqlite);
}

mod pg_jobs {
    jobs_backend!(sqlx::Postgres);
}

/// Implements the port for a SQL store, reading on `$read` and writing on `$write`.
macro_rules! sql_job_store {
    ($store:ty, $module:ident, $read:ident, $write:ident) => {
        impl JobStore for $store {
            fn insert(&self, job: ExternalJob) -> BoxFuture<'_, Result<bool, Error>> {
                Box::pin(async move { $module::insert(&*self.$write().await, job).await })
            }
            fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<ExternalJob>, Error>> {
                Box::pin($module::get(&self.$read, id))
            }
            fn available<'a>(
                &'a self,
                topics: &'a [String],
                dealer: Option<&'a str>,
                now: jiff::Timestamp,
                limit: usize,
            ) -> BoxFuture<'a, Result<Vec<ExternalJob>, Error>> {
                Box::pin($module::available(&self.$read, topics, dealer, now, limit))
            }
            fn replace(&self, job: ExternalJob, expected: u64) -> BoxFuture<'_, Result<bool, Error>> {
                Box::pin(async move { $module::replace(&*self.$write().await, job, expected).await })
            }
        }
    };
}

sql_job_store!(SqliteStore, sqlite_jobs, read, write_turn);
sql_job_store!(PgStore, pg_jobs, pool, write_turn);

/// The external jobs of whichever database was opened: the table `external_jobs` on SQLite and
/// PostgreSQL, a [`MemoryJobStore`] beside a memory store.
#[derive(Debug, Clone)]
pub enum AnyJobStore {
    /// In memory (nothing survives).
    Memory(MemoryJobStore),
    /// A SQLite file.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PgStore),
}

impl AnyJobStore {
    /// The jobs in the same database as `store` (a fresh, empty one in memory for `memory:`:
    /// create it once and share it).
    pub fn for_store(store: &AnyStore) -> AnyJobStore {
        match store {
            AnyStore::Memory(_) => AnyJobStore::Memory(MemoryJobStore::new()),
            AnyStore::Sqlite(s) => AnyJobStore::Sqlite(s.clone()),
            AnyStore::Postgres(s) => AnyJobStore::Postgres(s.clone()),
        }
    }
}

impl JobStore for AnyJobStore {
    fn insert(&self, job: ExternalJob) -> BoxFuture<'_, Result<bool, Error>> {
        match self {
            AnyJobStore::Memory(s) => s.insert(job),
            AnyJobStore::Sqlite(s) => s.insert(job),
            AnyJobStore::Postgres(s) => s.insert(job),
        }
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<ExternalJob>, Error>> {
        match self {
            AnyJobStore::Memory(s) => s.get(id),
            AnyJobStore::Sqlite(s) => s.get(id),
            AnyJobStore::Postgres(s) => s.get(id),
        }
    }

    fn available<'a>(
        &'a self,
        topics: &'a [String],
        dealer: Option<&'a str>,
        now: jiff::Timestamp,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ExternalJob>, Error>> {
        match self {
            AnyJobStore::Memory(s) => s.available(topics, dealer, now, limit),
            AnyJobStore::Sqlite(s) => s.available(topics, dealer, now, limit),
            AnyJobStore::Postgres(s) => s.available(topics, dealer, now, limit),
        }
    }

    fn replace(&self, job: ExternalJob, expected: u64) -> BoxFuture<'_, Result<bool, Error>> {
        match self {
            AnyJobStore::Memory(s) => s.replace(job, expected),
            AnyJobStore::Sqlite(s) => s.replace(job, expected),
            AnyJobStore::Postgres(s) => s.replace(job, expected),
        }
    }
}
