//! The two background loops: the timer scheduler and the outbox dispatcher.
//!
//! Both take work from the store under a lease (on PostgreSQL with `FOR UPDATE SKIP LOCKED`,
//! so several nodes share the work without taking the same row twice), and both finish each
//! piece of work in the same transaction as the transition it causes: a timer row is deleted by
//! the transition that fires it, an outbox row by the transition that applies its result. A
//! crash in between leaves the row to be taken again, and the core refuses the duplicate as
//! stale, so nothing is lost and nothing is applied twice.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use machine::{Actor, Effect, Input, Start};
use serde_json::{Value, json};
use store::{Lease, Millis, OutboxRow, Store};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::clock::{from_ms, ms};
use crate::convert::Work;
use crate::error::Error;
use crate::external::{self, topic_of};
use crate::lane::{Command, Op, Settle};
use crate::{Inner, Refused};

/// Timers taken per round.
const TIMER_BATCH: u32 = 256;
/// Outbox rows taken per round.
const OUTBOX_BATCH: u32 = 64;
/// How long to wait before trying an outbox row again after the engine failed on it.
const OUTBOX_BACKOFF_MS: Millis = 5_000;

fn lease(inner: &Inner, limit: u32) -> Lease {
    let now = ms(inner.clock.now());
    Lease { owner: inner.node.clone(), now, until: now.saturating_add(inner.config.lease.as_millis() as i64), limit }
}

/// Fires due timers in due order, for as long as the runtime runs.
pub(crate) async fn timers(inner: Arc<Inner>) {
    let mut stop = inner.stop.subscribe();
    loop {
        if *stop.borrow() {
            return;
        }
        // Until the next wake-up is planned below, any new timer wakes the loop.
        inner.timers_next.store(i64::MAX, Ordering::Release);
        let lease = lease(&inner, TIMER_BATCH);
        let now = lease.now;
        let n_taken = match fire_due(&inner, &lease).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("taking due timers failed: {e}");
                0
            }
        };
        if n_taken == TIMER_BATCH as usize {
            continue;
        }
        let next = match inner.store.next_timer_at().await {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!("reading the next timer failed: {e}");
                None
            }
        };
        // A next timer at or before `now` is leased by another node (or failed here): look
        // again after the poll interval.
        let wake_at = next.filter(|t| *t > now);
        inner.timers_next.store(wake_at.unwrap_or(i64::MAX), Ordering::Release);
        let clock = Arc::clone(&inner.clock);
        tokio::select! {
            _ = stop.changed() => {}
            _ = inner.timers_wake.notified() => {}
            _ = tokio::time::sleep(inner.config.poll) => {}
            _ = async {
                match wake_at {
                    Some(t) => clock.sleep_until(from_ms(t)).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
    }
}

async fn fire_due(inner: &Arc<Inner>, lease: &Lease) -> Result<usize, Error> {
    let due = inner.store.take_due_timers(lease).await?;
    let n = due.len();
    let mut answers = Vec::with_capacity(n);
    for timer in due {
        let (cmd, rx) = Command::new(Op::Fire { timer });
        inner.submit(cmd).await?;
        answers.push(rx);
    }
    for rx in answers {
        match rx.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("firing a timer failed: {e}"),
            Err(_) => return Err(Error::ShuttingDown),
        }
    }
    Ok(n)
}

/// Performs queued effects, for as long as the runtime runs.
pub(crate) async fn outbox(inner: Arc<Inner>) {
    let mut stop = inner.stop.subscribe();
    let permits = Arc::new(Semaphore::new(inner.config.action_concurrency.max(1)));
    let in_flight: Arc<Mutex<HashSet<i64>>> = Arc::default();
    let queues: Arc<Mutex<HashMap<String, VecDeque<OutboxRow>>>> = Arc::default();
    let mut running = JoinSet::new();
    loop {
        while running.try_join_next().is_some() {}
        if *stop.borrow() {
            break;
        }
        let lease = lease(&inner, OUTBOX_BATCH);
        let rows = match inner.store.take_outbox(&lease).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!("taking outbox rows failed: {e}");
                Vec::new()
            }
        };
        let full = rows.len() == OUTBOX_BATCH as usize;
        // The rows of one instance are performed in order, one after the other (a message it
        // sent before it ended reaches the receivers before its parent hears of the end);
        // instances do not wait for each other, so a slow action delays only its own.
        for row in rows {
            if !lock(&in_flight).insert(row.seq) {
                continue;
            }
            let instance = row.instance_id.clone();
            {
                let mut q = lock(&queues);
                if let Some(pending) = q.get_mut(&instance) {
                    // A worker for this instance is running; it takes this row next.
                    pending.push_back(row);
                    continue;
                }
                q.insert(instance.clone(), VecDeque::from([row]));
            }
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else { break };
            let inner = Arc::clone(&inner);
            let in_flight = Arc::clone(&in_flight);
            let queues = Arc::clone(&queues);
            running.spawn(async move {
                loop {
                    let row = {
                        let mut q = lock(&queues);
                        match q.get_mut(&instance).and_then(VecDeque::pop_front) {
                            Some(row) => row,
                            None => {
                                q.remove(&instance);
                                break;
                            }
                        }
                    };
                    let seq = row.seq;
                    if let Err(e) = perform(&inner, row).await {
                        tracing::warn!("performing outbox row {seq} failed: {e}; trying again later");
                        let at = ms(inner.clock.now()).saturating_add(OUTBOX_BACKOFF_MS);
                        if let Err(e) = inner.store.defer_outbox(seq, at).await {
                            tracing::warn!("deferring outbox row {seq} failed: {e}");
                        }
                    }
                    lock(&in_flight).remove(&seq);
                }
                drop(permit);
            });
        }
        if full {
            tokio::task::yield_now().await;
            continue;
        }
        tokio::select! {
            _ = stop.changed() => {}
            _ = inner.outbox_wake.notified() => {}
            _ = tokio::time::sleep(inner.config.poll) => {}
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }
    // Let what was started finish: its results still reach the lanes before they close.
    while running.join_next().await.is_some() {}
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Performs one outbox row and applies its result, settling the row in the same transaction.
/// A refusal of the result (`.ok()` below) is expected: it is a duplicate after a crash, or an
/// answer for a step that was left meanwhile, and the row is settled all the same.
async fn perform(inner: &Arc<Inner>, row: OutboxRow) -> Result<(), Error> {
    let work: Work = serde_json::from_str(&row.effect)
        .map_err(|source| Error::Decode { what: format!("outbox row {}", row.seq), source })?;
    let done = Some(row.seq);
    match work {
        Work::DeliverBuffered { name, key } => {
            match inner.store.buffered_message(&row.dealer, &name, key.as_deref()).await? {
                Some(m) => {
                    let payload = serde_json::from_str(&m.payload).unwrap_or(Value::Null);
                    let input = Input::Message { name, key: m.key.clone(), payload };
                    let op = Op::Input { instance: row.instance_id.clone(), input, idempotency_key: None };
                    inner.call_with(op, done, Settle::Always, Some(m.id)).await?.ok();
                }
                None => settle(inner, &row).await?,
            }
        }
        Work::Effect { effect } => match *effect {
            Effect::Invoke { job, action, input, attempt, idempotency_key } if topic_of(&action).is_some() => {
                match external::enqueue(inner, &row, &job, &action, input, attempt, idempotency_key).await? {
                    // A worker answers later (`Runtime::complete_external`).
                    None => settle(inner, &row).await?,
                    Some(refused) => {
                        let op = Op::Input { instance: row.instance_id.clone(), input: refused, idempotency_key: None };
                        inner.call_with(op, done, Settle::Always, None).await?.ok();
                    }
                }
            }
            Effect::Invoke { job, action, input, attempt, idempotency_key } => {
                let result = invoke(inner, &row, &job, &action, input, attempt, idempotency_key).await;
                let op = Op::Input { instance: row.instance_id.clone(), input: result, idempotency_key: None };
                inner.call_with(op, done, Settle::Always, None).await?.ok();
            }
            Effect::StartInstance { id, process, data, business_key, parent } => {
                let failed = |why: String| Input::ChildEnded {
                    child: id.clone(),
                    outcome: "failed_to_start".into(),
                    result: json!({ "error": why }),
                };
                let input = match inner.store.current_deployment(&row.dealer, &process).await? {
                    None => failed(format!("the process `{process}` is not deployed for this dealer")),
                    Some(hash) => {
                        let start = Start {
                            id: id.clone(),
                            dealer: row.dealer.clone(),
                            business_key,
                            data,
                            by: Actor::System,
                            parent: Some(parent.clone()),
                        };
                        match inner.call_with(Op::Start { start, hash }, done, Settle::UnlessRejected, None).await? {
                            Err(Refused::Rejected(r)) => failed(r.to_string()),
                            // Started now, or earlier (a retry after a crash): done.
                            _ => return Ok(()),
                        }
                    }
                };
                let op = Op::Input { instance: parent.instance.clone(), input, idempotency_key: None };
                inner.call_with(op, done, Settle::Always, None).await?.ok();
            }
            Effect::SendMessage { name, key, payload } => {
                inner.route(&row.dealer, &name, key.as_deref(), &payload, done, &row.instance_id).await?;
            }
            Effect::NotifyParent { parent, child, outcome, result } => {
                let op = Op::Input {
                    instance: parent,
                    input: Input::ChildEnded { child, outcome, result },
                    idempotency_key: None,
                };
                inner.call_with(op, done, Settle::Always, None).await?.ok();
            }
            Effect::CancelChild { child } => {
                let input = Input::Cancel { by: Actor::System, reason: "the parent no longer waits for it".into() };
                let op = Op::Input { instance: child, input, idempotency_key: None };
                inner.call_with(op, done, Settle::Always, None).await?.ok();
            }
            // Projection effects never go to the outbox; settle a stray one.
            Effect::TaskOpened { .. }
            | Effect::TaskChanged { .. }
            | Effect::TaskClosed { .. }
            | Effect::TimerSet { .. }
            | Effect::TimerCancelled { .. }
            | Effect::Subscribe { .. }
            | Effect::Unsubscribe { .. } => settle(inner, &row).await?,
        },
    }
    Ok(())
}

async fn settle(inner: &Arc<Inner>, row: &OutboxRow) -> Result<(), Error> {
    let op = Op::Write { lane_key: row.instance_id.clone(), change: Box::default() };
    inner.call_with(op, Some(row.seq), Settle::Always, None).await?.ok();
    Ok(())
}

/// Invokes an action under its schemas and the timeout; the answer is the input for the core.
async fn invoke(
    inner: &Arc<Inner>,
    row: &OutboxRow,
    job: &str,
    action: &str,
    input: Value,
    attempt: u32,
    idempotency_key: String,
) -> Input {
    let failed = |error: String, retryable: bool| Input::ActionFailed { job: job.into(), error, retryable };
    let actions = inner.actions();
    let Some(reg) = actions.get(action) else {
        return failed(format!("no action named `{action}` is installed"), false);
    };
    let errors = machine::schema_errors(&reg.input, &input);
    if !errors.is_empty() {
        let list: Vec<String> = errors.iter().map(|e| format!("{} {}", e.path, e.message)).collect();
        return failed(format!("the input does not fit the action: {}", list.join("; ")), false);
    }
    let invocation = plugin_api::Invocation {
        job: job.into(),
        idempotency_key,
        instance: row.instance_id.clone(),
        dealer: row.dealer.clone(),
        attempt,
        input,
    };
    let timeout: Duration = inner.config.action_timeout;
    match tokio::time::timeout(timeout, reg.action.invoke(invocation)).await {
        Err(_) => failed(format!("no answer within {} s", timeout.as_secs_f64()), true),
        Ok(Err(e)) => failed(e.to_string(), e.is_retryable()),
        Ok(Ok(output)) => {
            let errors = machine::schema_errors(&reg.output, &output);
            if errors.is_empty() {
                Input::ActionSucceeded { job: job.into(), output }
            } else {
                let list: Vec<String> = errors.iter().map(|e| format!("{} {}", e.path, e.message)).collect();
                failed(format!("the action's answer does not fit its schema: {}", list.join("; ")), false)
            }
        }
    }
}
