//! External task workers (`action: topic:<topic>` steps): fetch and lock, complete, fail. The
//! rules are the runtime's (`runtime::Runtime::fetch_and_lock` and friends); these handlers
//! authenticate the worker and keep it inside its dealer.
//!
//! A worker is a user of a dealer holding the `external_worker` role (`sopflow user add ...
//! --roles external_worker`, then `sopflow token create`). It sees and answers only its own
//! dealer's jobs; another dealer's job is 404. Headquarters users cannot work jobs: the jobs
//! are a dealer's work. A lock belongs to the token's user and the `worker` name together, so
//! two workers sharing an account still cannot answer each other's jobs.

use axum::Json;
use axum::extract::State;
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::dto::Problem;
use machine::FieldError;

use crate::error::Error;
use crate::extract::{Body, Id};
use crate::state::AppState;
use crate::views;

/// The role a dealer's worker accounts hold.
pub const WORKER_ROLE: &str = "external_worker";

/// The most jobs one fetch may lock.
const MAX_FETCH: u32 = 100;

/// The longest lock a worker may ask for (one day).
const MAX_LOCK_SECS: u64 = 86_400;

/// Lock jobs of some topics for a while.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FetchRequest {
    /// The worker's name (e.g. `dms-1`); the lock is held by this name under the caller's account.
    pub worker: String,
    /// The topics the worker serves.
    pub topics: Vec<String>,
    /// At most this many jobs (1 to 100; default 10).
    #[serde(default)]
    pub max: Option<u32>,
    /// How long the jobs stay locked, in seconds (1 to 86,400; default 300).
    #[serde(default)]
    pub lock_secs: Option<u64>,
}

/// A locked job, as the worker sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExternalTaskDto {
    /// The job id, for complete and failure.
    pub id: String,
    /// The topic.
    pub topic: String,
    /// The step's input (valid against the topic's input schema).
    #[schema(value_type = Object)]
    pub input: Value,
    /// The instance.
    pub instance: String,
    /// Its dealer.
    pub dealer: String,
    /// The core's try number (1 for the first; a retry after a failure is a new job).
    pub attempt: u32,
    /// Send it to the system you call, so a repeated call is not applied twice.
    pub idempotency_key: String,
    /// The lock ends then, unless the job is completed or failed first.
    pub lock_expires_at: Option<String>,
}

/// A worker's result.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteExternalRequest {
    /// The worker's name, as when it fetched.
    pub worker: String,
    /// The output, checked against the topic's output schema.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub output: Value,
}

/// A worker's failure.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailExternalRequest {
    /// The worker's name, as when it fetched.
    pub worker: String,
    /// What went wrong (shown to the administrator if it becomes an incident).
    pub error: String,
    /// Whether trying again may help (default true).
    #[serde(default = "yes")]
    pub retryable: bool,
}

fn yes() -> bool {
    true
}

/// What happened to a completed or failed job.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExternalResultDto {
    /// `completed`; after a failure `retry` (a new job from `retry_at`), `incident` (no tries
    /// left: an administrator decides), or `stale` (the instance no longer waits for it).
    pub outcome: String,
    /// When the next try is handed out, for `retry`.
    pub retry_at: Option<String>,
}

/// The caller's dealer, if it may work jobs.
fn worker_dealer(p: &Principal) -> Result<&str, Error> {
    if p.is_hq() {
        return Err(Error::Forbidden("external tasks are a dealer's work; headquarters cannot take them".into()));
    }
    if !p.roles.iter().any(|r| r == WORKER_ROLE) {
        return Err(Error::Forbidden(format!("only accounts with the `{WORKER_ROLE}` role work external tasks")));
    }
    Ok(&p.organisation)
}

/// The lock owner: the account and the worker's name.
fn lock_owner(p: &Principal, worker: &str) -> Result<String, Error> {
    let worker = worker.trim();
    if worker.is_empty() || worker.len() > 200 {
        return Err(Error::invalid("/worker", "must be a name of 1 to 200 characters"));
    }
    Ok(format!("{}/{worker}", p.user))
}

/// A job of the caller's dealer (another dealer's is 404).
async fn own_job(s: &AppState, dealer: &str, id: &str) -> Result<(), Error> {
    match s.runtime().external_job(id).await.map_err(job_error)? {
        Some(job) if job.dealer == dealer => Ok(()),
        _ => Err(Error::NotFound),
    }
}

fn job_error(e: runtime::JobError) -> Error {
    use runtime::JobError as E;
    match e {
        E::UnknownJob(_) => Error::NotFound,
        E::NotLocked { .. } | E::Finished(_) => Error::Conflict(e.to_string()),
        E::Invalid(v) => Error::Validation {
            detail: format!("{} field(s) of the output are invalid; the task stays locked", v.errors.len()),
            errors: v.errors.iter().map(|f| FieldError { path: f.path.clone(), message: f.message.clone() }).collect(),
        },
        E::UnknownTopic(_) => Error::invalid("/topics", e.to_string()),
        E::Store(inner) => Error::Internal(inner.to_string()),
    }
}

/// Lock up to `max` open jobs of the topics, oldest first, for `lock_secs`.
#[utoipa::path(
    post, path = "/api/v1/external-tasks/fetch-and-lock", tag = "external tasks",
    request_body = FetchRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The jobs now locked for the worker (maybe none)", body = Vec<ExternalTaskDto>),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a worker account of a dealer", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn fetch_and_lock(
    State(s): State<AppState>,
    p: Principal,
    body: Body<FetchRequest>,
) -> Result<Json<Vec<ExternalTaskDto>>, Error> {
    let dealer = worker_dealer(&p)?;
    let req = body.value;
    let owner = lock_owner(&p, &req.worker)?;
    let max = req.max.unwrap_or(10);
    if !(1..=MAX_FETCH).contains(&max) {
        return Err(Error::invalid("/max", format!("must be between 1 and {MAX_FETCH}")));
    }
    let lock_secs = req.lock_secs.unwrap_or(300);
    if !(1..=MAX_LOCK_SECS).contains(&lock_secs) {
        return Err(Error::invalid("/lock_secs", format!("must be between 1 and {MAX_LOCK_SECS}")));
    }
    if req.topics.is_empty() || req.topics.len() > 50 {
        return Err(Error::invalid("/topics", "must name 1 to 50 topics"));
    }
    let lock_for = SignedDuration::from_secs(i64::try_from(lock_secs).unwrap_or(i64::MAX));
    let jobs = s
        .runtime()
        .fetch_and_lock(&owner, Some(dealer), &req.topics, max as usize, lock_for)
        .await
        .map_err(job_error)?;
    Ok(Json(
        jobs.into_iter()
            .map(|j| ExternalTaskDto {
                attempt: runtime::attempt_of(&j),
                lock_expires_at: j.lock.as_ref().map(|l| views::time(l.until)),
                id: j.id,
                topic: j.topic,
                input: j.input,
                instance: j.instance,
                dealer: j.dealer,
                idempotency_key: j.idempotency_key,
            })
            .collect(),
    ))
}

/// Complete a locked job with its output (checked against the topic's output schema); the
/// instance moves on. Completing again changes nothing.
#[utoipa::path(
    post, path = "/api/v1/external-tasks/{id}/complete", tag = "external tasks",
    params(("id" = String, Path, description = "The job id")),
    request_body = CompleteExternalRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Completed", body = ExternalResultDto),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a worker account of a dealer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job, or not visible", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The lock was lost or the job is finished", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The output does not match the topic's schema; every error is listed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn complete(
    State(s): State<AppState>,
    p: Principal,
    Id(id): Id,
    body: Body<CompleteExternalRequest>,
) -> Result<Json<ExternalResultDto>, Error> {
    let dealer = worker_dealer(&p)?;
    own_job(&s, dealer, &id).await?;
    let req = body.value;
    let owner = lock_owner(&p, &req.worker)?;
    s.runtime().complete_external(&id, &owner, req.output).await?.map_err(job_error)?;
    Ok(Json(ExternalResultDto { outcome: "completed".into(), retry_at: None }))
}

/// Report that a locked job failed: it is tried again after the step's backoff while tries
/// remain and the failure is retryable; otherwise the instance gets an incident.
#[utoipa::path(
    post, path = "/api/v1/external-tasks/{id}/failure", tag = "external tasks",
    params(("id" = String, Path, description = "The job id")),
    request_body = FailExternalRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Recorded", body = ExternalResultDto),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a worker account of a dealer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job, or not visible", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The lock was lost or the job is finished", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn failure(
    State(s): State<AppState>,
    p: Principal,
    Id(id): Id,
    body: Body<FailExternalRequest>,
) -> Result<Json<ExternalResultDto>, Error> {
    let dealer = worker_dealer(&p)?;
    own_job(&s, dealer, &id).await?;
    let req = body.value;
    let owner = lock_owner(&p, &req.worker)?;
    let error: String = req.error.chars().take(2_000).collect();
    let outcome = s.runtime().fail_external(&id, &owner, &error, req.retryable).await?.map_err(job_error)?;
    Ok(Json(match outcome {
        runtime::WorkerFailure::Retry { at } => {
            ExternalResultDto { outcome: "retry".into(), retry_at: Some(views::time(at)) }
        }
        runtime::WorkerFailure::GaveUp => ExternalResultDto { outcome: "incident".into(), retry_at: None },
        runtime::WorkerFailure::Stale => ExternalResultDto { outcome: "stale".into(), retry_at: None },
    }))
}
