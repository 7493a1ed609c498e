//! External task workers: fetch and lock, lock expiry, validated completion, retries, incidents.

use std::path::Path;

use jiff::{SignedDuration, Timestamp};
use model::RetryPolicy;
use plugins::external::{Error, ExternalJobs, Failed, MemoryJobStore, NewJob};
use plugins::{PluginsConfig, Registry};
use serde_json::json;

fn at(minutes: i64) -> Timestamp {
    let start: Timestamp = "2026-03-02T01:00:00Z".parse().unwrap();
    start.checked_add(SignedDuration::from_mins(minutes)).unwrap()
}

async fn jobs() -> ExternalJobs<MemoryJobStore> {
    let config = PluginsConfig::parse(
        Path::new("plugins.yaml"),
        "topics:\n  dms_sync:\n    input: { type: object, required: [order_no] }\n    output:\n      type: object\n      additionalProperties: false\n      required: [synced]\n      properties: { synced: { type: boolean } }\n",
    )
    .unwrap();
    let registry = Registry::builder(config).build().unwrap();
    let jobs = ExternalJobs::new(MemoryJobStore::new(), registry.topic_schemas());
    let retry = RetryPolicy {
        max_attempts: 3,
        backoff: SignedDuration::from_mins(1),
        max_backoff: SignedDuration::from_mins(10),
    };
    let new = NewJob {
        job: "i1-j1".into(),
        attempt: 1,
        instance: "i1".into(),
        dealer: "d1".into(),
        action: "topic:dms_sync".into(),
        input: json!({ "order_no": "RO-1" }),
        idempotency_key: "i1-j1#1".into(),
        retry,
    };
    assert_eq!(jobs.enqueue(new.clone(), at(0)).await.unwrap(), "i1-j1.1");
    // The outbox may deliver the same effect twice: still one job.
    jobs.enqueue(new, at(0)).await.unwrap();
    jobs
}

fn topics() -> Vec<String> {
    vec!["dms_sync".to_owned()]
}

#[tokio::test]
async fn a_worker_that_dies_with_a_locked_job_loses_nothing() {
    let jobs = jobs().await;
    let lock = SignedDuration::from_mins(5);
    let taken = jobs.fetch_and_lock("worker-a", None, &topics(), 10, lock, at(0)).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].id, "i1-j1.1");
    assert_eq!(taken[0].input, json!({ "order_no": "RO-1" }));

    // worker-a dies. While its lock holds, nobody else gets the job.
    assert!(jobs.fetch_and_lock("worker-b", None, &topics(), 10, lock, at(4)).await.unwrap().is_empty());
    // Once it expires, the job returns.
    let retaken = jobs.fetch_and_lock("worker-b", None, &topics(), 10, lock, at(5)).await.unwrap();
    assert_eq!(retaken.len(), 1);
    assert_eq!(retaken[0].attempt(), 1, "an expired lock is not a failed try");

    // worker-a comes back late: the job is worker-b's now.
    let late = jobs.complete("i1-j1.1", "worker-a", json!({ "synced": true })).await.unwrap_err();
    assert!(matches!(late, Error::NotLocked { .. }), "{late}");
    let done = jobs.complete("i1-j1.1", "worker-b", json!({ "synced": true })).await.unwrap();
    assert_eq!((done.job.as_str(), done.instance.as_str(), done.first), ("i1-j1", "i1", true));
    let repeated = jobs.complete("i1-j1.1", "worker-b", json!({ "synced": true })).await.unwrap();
    assert!(!repeated.first, "a repeated completion is acknowledged but not fed to the core again");
}

#[tokio::test]
async fn a_completion_whose_output_violates_the_schema_is_refused_and_the_job_stays_locked() {
    let jobs = jobs().await;
    jobs.fetch_and_lock("w", None, &topics(), 1, SignedDuration::from_mins(5), at(0)).await.unwrap();
    let err = jobs.complete("i1-j1.1", "w", json!({ "synced": "yes", "extra": 1 })).await.unwrap_err();
    let Error::Invalid(violation) = err else { panic!("expected a schema violation, got {err}") };
    let paths: Vec<&str> = violation.errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["/synced", ""]);
    assert!(jobs.complete("i1-j1.1", "w", json!({ "synced": true })).await.is_ok());
}

#[tokio::test]
async fn failures_are_retried_with_backoff_and_the_last_one_raises_an_incident() {
    let jobs = jobs().await;
    let lock = SignedDuration::from_mins(5);
    jobs.fetch_and_lock("w", None, &topics(), 1, lock, at(0)).await.unwrap();
    assert_eq!(
        jobs.fail("i1-j1.1", "w", "DMS down", true, at(1)).await.unwrap(),
        Failed::Retry { at: at(2), failures: 1 }
    );
    assert!(
        jobs.fetch_and_lock("w", None, &topics(), 1, lock, at(1)).await.unwrap().is_empty(),
        "not before the backoff"
    );
    let again = jobs.fetch_and_lock("w", None, &topics(), 1, lock, at(2)).await.unwrap();
    assert_eq!(again[0].attempt(), 2);
    assert_eq!(
        jobs.fail("i1-j1.1", "w", "DMS down", true, at(2)).await.unwrap(),
        Failed::Retry { at: at(4), failures: 2 },
        "the backoff doubles"
    );
    jobs.fetch_and_lock("w", None, &topics(), 1, lock, at(4)).await.unwrap();
    assert_eq!(
        jobs.fail("i1-j1.1", "w", "DMS down", true, at(4)).await.unwrap(),
        Failed::Incident {
            job: "i1-j1".into(),
            instance: "i1".into(),
            error: "the worker `w` failed the task (3 tries): DMS down".into()
        }
    );
    assert!(jobs.fetch_and_lock("w", None, &topics(), 1, lock, at(60)).await.unwrap().is_empty(), "given up for good");
}

#[tokio::test]
async fn a_failure_that_is_not_retryable_raises_the_incident_at_once() {
    let jobs = jobs().await;
    jobs.fetch_and_lock("w", None, &topics(), 1, SignedDuration::from_mins(5), at(0)).await.unwrap();
    let outcome = jobs.fail("i1-j1.1", "w", "unknown plate", false, at(0)).await.unwrap();
    assert!(matches!(outcome, Failed::Incident { ref error, .. } if error.ends_with("(1 try): unknown plate")));
    assert!(matches!(jobs.fail("i1-j1.1", "w", "again", true, at(1)).await, Err(Error::Finished(_))));
}

#[tokio::test]
async fn an_input_that_violates_the_topic_schema_is_not_enqueued() {
    let jobs = jobs().await;
    let new = NewJob {
        job: "i2-j1".into(),
        attempt: 1,
        instance: "i2".into(),
        dealer: "d1".into(),
        action: "topic:dms_sync".into(),
        input: json!({}),
        idempotency_key: "i2-j1#1".into(),
        retry: RetryPolicy::default(),
    };
    let err = jobs.enqueue(new.clone(), at(0)).await.unwrap_err();
    assert!(err.to_string().contains("/order_no"), "{err}");
    let unknown = jobs.enqueue(NewJob { action: "topic:nobody".into(), ..new }, at(0)).await.unwrap_err();
    assert!(matches!(unknown, Error::UnknownTopic(_)));
}
