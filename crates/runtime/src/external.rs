//! External task workers: actions named `topic:<topic>` are not invoked in the engine but wait,
//! as jobs in the store, for a worker that fetches and locks them over HTTP (see
//! `plugins::external` for the locking rules and `docs/plugins.md` for the protocol).
//!
//! The runtime's part is the wiring, in both directions:
//!
//! - the outbox dispatcher enqueues a job for each `Effect::Invoke` of a topic action, and
//!   answers nothing to the core yet ([`enqueue`]);
//! - a worker's completion becomes `Input::ActionSucceeded`, and its failure
//!   `Input::ActionFailed` with the worker's `retryable`, so retries (with the step's backoff,
//!   on a durable timer), incidents and `on_failure` work exactly as for an in-process action.
//!
//! Each job is one try of the core: it is created with a single attempt, and the next try (after
//! the core's backoff, or an administrator's retry of the incident) is a new job
//! (`<job>.<attempt>`). Keeping the retry count in the core alone means one rule for every
//! action, and a retry survives restarts because it is a timer like any other.

use jiff::{SignedDuration, Timestamp};
use machine::{Event, Input};
use model::RetryPolicy;
use plugins::external::{self, ExternalJob, ExternalJobs, Failed, NewJob};
use serde_json::Value;
use store_sqlx::AnyJobStore;

use crate::{Error, Inner, Runtime};

pub use plugins::external::{Error as JobError, TopicSchemas, topic_of};

/// What a worker's failure led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerFailure {
    /// The core will try again at this time (a new job is handed out then).
    Retry {
        /// When.
        at: Timestamp,
    },
    /// That was the last try: the instance has an incident (or took the step's `on_failure`).
    GaveUp,
    /// The core no longer waits for this answer (the instance moved on or was cancelled).
    Stale,
}

/// The runtime's external jobs (in the runtime's own database).
pub(crate) type Jobs = ExternalJobs<AnyJobStore>;

/// Enqueues the job for one try of a topic action. `Ok(None)`: enqueued (or already, after a
/// crash), the answer comes from a worker; `Ok(Some(input))`: refused at once, feed the input
/// to the core; `Err`: the store failed, try the outbox row again later.
pub(crate) async fn enqueue(
    inner: &Inner,
    row: &store::OutboxRow,
    job: &str,
    action: &str,
    input: Value,
    attempt: u32,
    idempotency_key: String,
) -> Result<Option<Input>, Error> {
    let new = NewJob {
        job: job.into(),
        attempt,
        instance: row.instance_id.clone(),
        dealer: row.dealer.clone(),
        action: action.into(),
        input,
        idempotency_key,
        // One try per job: the core counts tries (see the module's comment).
        retry: RetryPolicy { max_attempts: 1, ..RetryPolicy::default() },
    };
    match inner.external.enqueue(new, inner.clock.now()).await {
        Ok(_) => Ok(None),
        Err(JobError::Store(e)) => Err(Error::JobStore(e)),
        Err(e) => Ok(Some(Input::ActionFailed { job: job.into(), error: e.to_string(), retryable: false })),
    }
}

impl Runtime {
    /// Locks up to `max` jobs of `topics` for `worker` for `lock_for` (of `dealer` only, when
    /// given), oldest due first.
    pub async fn fetch_and_lock(
        &self,
        worker: &str,
        dealer: Option<&str>,
        topics: &[String],
        max: usize,
        lock_for: SignedDuration,
    ) -> Result<Vec<ExternalJob>, JobError> {
        let now = self.inner.clock.now();
        self.inner.external.fetch_and_lock(worker, dealer, topics, max, lock_for, now).await
    }

    /// An external job by id.
    pub async fn external_job(&self, id: &str) -> Result<Option<ExternalJob>, JobError> {
        use plugins::external::JobStore;
        self.inner.external.store().get(id).await
    }

    /// A worker completes a job it holds; the output (checked against the topic's schema) goes
    /// to the instance. Completing again changes nothing.
    pub async fn complete_external(
        &self,
        id: &str,
        worker: &str,
        output: Value,
    ) -> Result<Result<(), JobError>, Error> {
        let done = match self.inner.external.complete(id, worker, output).await {
            Ok(done) => done,
            Err(JobError::Store(e)) => return Err(Error::JobStore(e)),
            Err(e) => return Ok(Err(e)),
        };
        if done.first {
            let input = Input::ActionSucceeded { job: done.job, output: done.output };
            // A refusal means the instance no longer waits (cancelled, or the step was left by
            // a timer): the answer is recorded on the job and nothing else happens.
            let _ = self.input(&done.instance, input).await?;
        }
        Ok(Ok(()))
    }

    /// A worker reports that it failed a job it holds: the core retries it after the step's
    /// backoff when `retryable` and tries remain, else raises an incident.
    pub async fn fail_external(
        &self,
        id: &str,
        worker: &str,
        error: &str,
        retryable: bool,
    ) -> Result<Result<WorkerFailure, JobError>, Error> {
        let now = self.inner.clock.now();
        let (job, instance, message) = match self.inner.external.fail(id, worker, error, retryable, now).await {
            Ok(Failed::Incident { job, instance, error }) => (job, instance, error),
            // Jobs hold a single try, so the job itself never asks for another one.
            Ok(Failed::Retry { .. }) => return Ok(Ok(WorkerFailure::Stale)),
            Err(JobError::Store(e)) => return Err(Error::JobStore(e)),
            Err(e) => return Ok(Err(e)),
        };
        let input = Input::ActionFailed { job: job.clone(), error: message, retryable };
        match self.input(&instance, input).await? {
            // The instance no longer waits for this answer.
            Err(_) => Ok(Ok(WorkerFailure::Stale)),
            Ok(applied) => {
                let retry_at = applied.events.iter().find_map(|e| match e {
                    Event::ActionFailed { job: j, retry_at, .. } if *j == job => Some(*retry_at),
                    _ => None,
                });
                Ok(Ok(match retry_at {
                    Some(Some(at)) => WorkerFailure::Retry { at },
                    _ => WorkerFailure::GaveUp,
                }))
            }
        }
    }
}

/// The core's try number of a job (its id is `<job>.<attempt>`).
pub fn attempt_of(job: &ExternalJob) -> u32 {
    job.id.rsplit_once('.').and_then(|(_, n)| n.parse().ok()).unwrap_or(1)
}

/// The job id of a core job's try, as workers see it.
pub fn job_id(job: &str, attempt: u32) -> String {
    external::job_id(job, attempt)
}
