//! External task workers: jobs for actions named `topic:<topic>`, which are not invoked inside
//! the engine but fetched and locked by workers over HTTP, in any language (like Camunda's
//! external tasks).
//!
//! This module is the job-locking state machine, pure and clock-free (every operation takes
//! `now`), over the small [`JobStore`] port; [`MemoryJobStore`] is the in-memory adapter. The
//! runtime stores one [`ExternalJob`] per `Effect::Invoke` of a `topic:` action; the server
//! exposes [`ExternalJobs::fetch_and_lock`], [`ExternalJobs::complete`] and
//! [`ExternalJobs::fail`] as `POST /api/v1/external-tasks/...` (see `docs/plugins.md`).
//!
//! - A fetched job is locked for the worker until `now + lock`; nobody else gets it meanwhile.
//! - A lock that expires returns the job: a worker that died loses nothing, the next fetch
//!   hands the job to another worker (a late answer from the first is still accepted as long
//!   as nobody else has locked the job since).
//! - Completion is accepted only with output matching the topic's output schema.
//! - A retryable failure puts the job back after the step's backoff; the last failure (or a
//!   permanent one) reports [`Failed::Incident`], which the runtime feeds to the core as a
//!   non-retryable `ActionFailed`, so that the core raises the incident (or takes
//!   `on_failure`) exactly as for an in-process action. An administrator's retry of that
//!   incident makes the core invoke the action again, which enqueues a fresh job.
//!
//! Concurrency is optimistic: each job has a `version`, and [`JobStore::replace`] saves only
//! over the version read, so two servers fetching at once never lock the same job twice (a SQL
//! adapter writes `UPDATE ... WHERE id = ? AND version = ?`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use model::RetryPolicy;
use plugin_api::BoxFuture;
use serde_json::Value;

use crate::schema::{CompiledSchema, Side, Violation};

/// The prefix of actions served by external workers: `action: topic:dms_sync`.
pub const TOPIC_PREFIX: &str = "topic:";

/// The topic of an action name, when it is an external one.
pub fn topic_of(action: &str) -> Option<&str> {
    action.strip_prefix(TOPIC_PREFIX).filter(|t| !t.is_empty())
}

/// The id of the external job for a core job's try: `<job>.<attempt>`.
pub fn job_id(job: &str, attempt: u32) -> String {
    format!("{job}.{attempt}")
}

/// A job waiting for, or held by, an external worker.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalJob {
    /// This job's id ([`job_id`]).
    pub id: String,
    /// The core's job (stable across the core's tries), for `ActionSucceeded`/`ActionFailed`.
    pub job: String,
    /// The instance that asked.
    pub instance: String,
    /// Its dealer.
    pub dealer: String,
    /// The topic (without `topic:`).
    pub topic: String,
    /// The input, validated against the topic's input schema when enqueued.
    pub input: Value,
    /// The core's idempotency key of the try, handed to the worker.
    pub idempotency_key: String,
    /// Tries and backoff, from the step's `retry`.
    pub retry: RetryPolicy,
    /// Failed tries so far.
    pub failures: u32,
    /// Not handed out before this moment (the backoff after a failure).
    pub due_at: Timestamp,
    /// The worker holding it, and until when.
    pub lock: Option<Lock>,
    /// Open, done or given up.
    pub state: JobState,
    /// The last failure's message.
    pub last_error: Option<String>,
    /// Bumped on every change; see [`JobStore::replace`].
    pub version: u64,
}

/// A worker's hold on a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// The worker's name, as it calls itself.
    pub worker: String,
    /// When the hold ends unless the job is completed or failed first.
    pub until: Timestamp,
}

/// Where a job stands.
#[derive(Debug, Clone, PartialEq)]
pub enum JobState {
    /// Waiting for a worker, or locked by one.
    Open,
    /// Completed with this output.
    Completed(Value),
    /// Failed for the last time; an incident was reported.
    GivenUp,
}

/// What the runtime enqueues for an `Effect::Invoke` of a `topic:` action.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// The core's job.
    pub job: String,
    /// The core's try number.
    pub attempt: u32,
    /// The instance.
    pub instance: String,
    /// Its dealer.
    pub dealer: String,
    /// The action (`topic:dms_sync`).
    pub action: String,
    /// The input.
    pub input: Value,
    /// The try's idempotency key.
    pub idempotency_key: String,
    /// The step's retry policy.
    pub retry: RetryPolicy,
}

/// A job completed by a worker: feed `Input::ActionSucceeded { job, output }` to the core.
#[derive(Debug, Clone, PartialEq)]
pub struct Completed {
    /// The core's job.
    pub job: String,
    /// The instance.
    pub instance: String,
    /// The output, valid against the topic's schema.
    pub output: Value,
    /// False when the worker repeated a completion already accepted (feed nothing then).
    pub first: bool,
}

/// What a worker's failure led to.
#[derive(Debug, Clone, PartialEq)]
pub enum Failed {
    /// The job is handed out again from `at`.
    Retry {
        /// When.
        at: Timestamp,
        /// Failed tries so far.
        failures: u32,
    },
    /// The last try failed: feed `Input::ActionFailed { job, error, retryable: false }` to the
    /// core, which raises the incident on the instance (or goes to the step's `on_failure`).
    Incident {
        /// The core's job.
        job: String,
        /// The instance.
        instance: String,
        /// What to tell the administrator.
        error: String,
    },
}

/// Why an operation on external jobs was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No job has this id.
    #[error("there is no external task `{0}`")]
    UnknownJob(String),
    /// The worker does not hold the job (it never fetched it, or its lock expired and another
    /// worker has it now).
    #[error("the external task `{id}` is not locked by `{worker}`")]
    NotLocked {
        /// The job.
        id: String,
        /// The worker.
        worker: String,
    },
    /// The job is already completed or given up.
    #[error("the external task `{0}` is already finished")]
    Finished(String),
    /// The topic has no workers' schema: `topic:` actions must be declared in the configuration.
    #[error("the topic `{0}` is not declared in the configuration")]
    UnknownTopic(String),
    /// The input or output does not match the topic's schema.
    #[error(transparent)]
    Invalid(#[from] Violation),
    /// The storage failed.
    #[error("the external task store failed: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Storage for external jobs. Implementations must make `replace` conditional on the version.
pub trait JobStore: Send + Sync {
    /// Stores a new job; false (and no change) when the id exists already.
    fn insert(&self, job: ExternalJob) -> BoxFuture<'_, Result<bool, Error>>;
    /// A job by id.
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<ExternalJob>, Error>>;
    /// Up to `limit` open jobs of `topics` (of `dealer` only, when given) that can be handed out
    /// at `now` (due, and unlocked or with an expired lock), oldest due first.
    fn available<'a>(
        &'a self,
        topics: &'a [String],
        dealer: Option<&'a str>,
        now: Timestamp,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ExternalJob>, Error>>;
    /// Saves `job` if the stored one still has version `expected`; false when it changed.
    fn replace(&self, job: ExternalJob, expected: u64) -> BoxFuture<'_, Result<bool, Error>>;
}

/// External jobs over a store, with each topic's schemas.
pub struct ExternalJobs<S> {
    store: S,
    inputs: BTreeMap<String, Arc<CompiledSchema>>,
    outputs: BTreeMap<String, Arc<CompiledSchema>>,
}

/// The schemas of the declared topics: `topic -> (input, output)`.
pub type TopicSchemas = BTreeMap<String, (Arc<CompiledSchema>, Arc<CompiledSchema>)>;

impl<S: JobStore> ExternalJobs<S> {
    /// Jobs in `store` for the topics of `schemas` (see `Registry::topic_schemas`).
    pub fn new(store: S, schemas: TopicSchemas) -> ExternalJobs<S> {
        let mut inputs = BTreeMap::new();
        let mut outputs = BTreeMap::new();
        for (topic, (input, output)) in schemas {
            inputs.insert(topic.clone(), input);
            outputs.insert(topic, output);
        }
        ExternalJobs { store, inputs, outputs }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Enqueues a job for a core try; enqueuing the same try again changes nothing (the outbox
    /// may deliver an effect twice). Returns the job's id.
    pub async fn enqueue(&self, new: NewJob, now: Timestamp) -> Result<String, Error> {
        let topic = topic_of(&new.action).ok_or_else(|| Error::UnknownTopic(new.action.clone()))?.to_owned();
        let schema = self.inputs.get(&topic).ok_or_else(|| Error::UnknownTopic(topic.clone()))?;
        let errors = schema.errors(&new.input);
        if !errors.is_empty() {
            return Err(Violation { action: new.action, side: Side::Input, errors }.into());
        }
        let id = job_id(&new.job, new.attempt);
        self.store
            .insert(ExternalJob {
                id: id.clone(),
                job: new.job,
                instance: new.instance,
                dealer: new.dealer,
                topic,
                input: new.input,
                idempotency_key: new.idempotency_key,
                retry: new.retry,
                failures: 0,
                due_at: now,
                lock: None,
                state: JobState::Open,
                last_error: None,
                version: 0,
            })
            .await?;
        Ok(id)
    }

    /// Locks up to `max` jobs of `topics` for `worker` until `now + lock_for`; with `dealer`,
    /// only jobs of that dealer (a dealer's worker never sees another dealer's work).
    pub async fn fetch_and_lock(
        &self,
        worker: &str,
        dealer: Option<&str>,
        topics: &[String],
        max: usize,
        lock_for: SignedDuration,
        now: Timestamp,
    ) -> Result<Vec<ExternalJob>, Error> {
        let until = now.checked_add(lock_for).unwrap_or(now);
        let mut locked = Vec::new();
        // Candidates can be taken by a concurrent fetch between reading and saving; ask for a
        // few more than needed and skip those that changed.
        let candidates = self.store.available(topics, dealer, now, max.saturating_mul(2).max(1)).await?;
        for mut job in candidates {
            if locked.len() >= max {
                break;
            }
            if !job.available(now) || dealer.is_some_and(|d| d != job.dealer) {
                continue;
            }
            let expected = job.version;
            job.lock = Some(Lock { worker: worker.to_owned(), until });
            job.version += 1;
            if self.store.replace(job.clone(), expected).await? {
                locked.push(job);
            }
        }
        Ok(locked)
    }

    /// Completes a job with the worker's output, which must match the topic's output schema
    /// (an invalid output is refused and the job stays locked, so the worker can correct it).
    pub async fn complete(&self, id: &str, worker: &str, output: Value) -> Result<Completed, Error> {
        let mut job = self.store.get(id).await?.ok_or_else(|| Error::UnknownJob(id.to_owned()))?;
        if let JobState::Completed(first) = &job.state {
            return Ok(Completed { job: job.job, instance: job.instance, output: first.clone(), first: false });
        }
        job.check_held(worker)?;
        if let Some(schema) = self.outputs.get(&job.topic) {
            let errors = schema.errors(&output);
            if !errors.is_empty() {
                return Err(
                    Violation { action: format!("{TOPIC_PREFIX}{}", job.topic), side: Side::Output, errors }.into()
                );
            }
        }
        let expected = job.version;
        job.state = JobState::Completed(output.clone());
        job.lock = None;
        job.version += 1;
        if !self.store.replace(job.clone(), expected).await? {
            return Err(Error::NotLocked { id: id.to_owned(), worker: worker.to_owned() });
        }
        Ok(Completed { job: job.job, instance: job.instance, output, first: true })
    }

    /// Records a worker's failure: the job comes back after the backoff, or, after the last
    /// try or a failure that is not retryable, an incident is reported.
    pub async fn fail(
        &self,
        id: &str,
        worker: &str,
        error: &str,
        retryable: bool,
        now: Timestamp,
    ) -> Result<Failed, Error> {
        let mut job = self.store.get(id).await?.ok_or_else(|| Error::UnknownJob(id.to_owned()))?;
        job.check_held(worker)?;
        let expected = job.version;
        job.failures += 1;
        job.lock = None;
        job.last_error = Some(error.to_owned());
        job.version += 1;
        let outcome = if retryable && job.failures < job.retry.max_attempts {
            let at = now.checked_add(job.retry.delay_after(job.failures)).unwrap_or(now);
            job.due_at = at;
            Failed::Retry { at, failures: job.failures }
        } else {
            job.state = JobState::GivenUp;
            let tries = if job.failures == 1 { "1 try".to_owned() } else { format!("{} tries", job.failures) };
            Failed::Incident {
                job: job.job.clone(),
                instance: job.instance.clone(),
                error: format!("the worker `{worker}` failed the task ({tries}): {error}"),
            }
        };
        if !self.store.replace(job, expected).await? {
            return Err(Error::NotLocked { id: id.to_owned(), worker: worker.to_owned() });
        }
        Ok(outcome)
    }
}

impl ExternalJob {
    /// Whether the job can be handed out at `now`.
    pub fn available(&self, now: Timestamp) -> bool {
        self.state == JobState::Open && self.due_at <= now && self.lock.as_ref().is_none_or(|l| l.until <= now)
    }

    /// The try number a worker sees (1 for the first).
    pub fn attempt(&self) -> u32 {
        self.failures + 1
    }

    fn check_held(&self, worker: &str) -> Result<(), Error> {
        if self.state != JobState::Open {
            return Err(Error::Finished(self.id.clone()));
        }
        match &self.lock {
            // A lock that expired still counts while nobody else has taken the job: the
            // worker's answer is late, not wrong.
            Some(lock) if lock.worker == worker => Ok(()),
            _ => Err(Error::NotLocked { id: self.id.clone(), worker: worker.to_owned() }),
        }
    }
}

/// External jobs in memory.
#[derive(Debug, Default, Clone)]
pub struct MemoryJobStore {
    jobs: Arc<Mutex<BTreeMap<String, ExternalJob>>>,
}

impl MemoryJobStore {
    /// An empty store.
    pub fn new() -> MemoryJobStore {
        MemoryJobStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, ExternalJob>> {
        // Every change is a single insert, so the data is consistent even after a panic.
        self.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl JobStore for MemoryJobStore {
    fn insert(&self, job: ExternalJob) -> BoxFuture<'_, Result<bool, Error>> {
        let mut jobs = self.lock();
        let inserted = !jobs.contains_key(&job.id);
        if inserted {
            jobs.insert(job.id.clone(), job);
        }
        Box::pin(std::future::ready(Ok(inserted)))
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<ExternalJob>, Error>> {
        let job = self.lock().get(id).cloned();
        Box::pin(std::future::ready(Ok(job)))
    }

    fn available<'a>(
        &'a self,
        topics: &'a [String],
        dealer: Option<&'a str>,
        now: Timestamp,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ExternalJob>, Error>> {
        let mut found: Vec<ExternalJob> = self
            .lock()
            .values()
            .filter(|j| topics.contains(&j.topic) && dealer.is_none_or(|d| d == j.dealer) && j.available(now))
            .cloned()
            .collect();
        found.sort_by(|a, b| (a.due_at, &a.id).cmp(&(b.due_at, &b.id)));
        found.truncate(limit);
        Box::pin(std::future::ready(Ok(found)))
    }

    fn replace(&self, job: ExternalJob, expected: u64) -> BoxFuture<'_, Result<bool, Error>> {
        let mut jobs = self.lock();
        let saved = match jobs.get(&job.id) {
            Some(current) if current.version == expected => {
                jobs.insert(job.id.clone(), job);
                true
            }
            _ => false,
        };
        Box::pin(std::future::ready(Ok(saved)))
    }
}
