//! Between the core and the store: a transition becomes one [`store::Change`] (the instance
//! row, the task and timer projections, the outbox rows, the audit entry), and stored rows
//! become machine types again.

use machine::{Actor, Effect, Event, Input, Instance, Status, Task, Timer};
use model::Process;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use store::audit::{self, Draft};
use store::{AuditRow, Change, InstanceRow, NewOutbox, Subscription, TaskRow, TimerRow};

use crate::clock::ms;
use crate::error::Error;

/// What an outbox row asks for; stored as JSON in `outbox.effect`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "work", rename_all = "snake_case")]
pub(crate) enum Work {
    /// An effect of the core.
    Effect {
        /// The effect.
        effect: Box<Effect>,
    },
    /// An instance began waiting for a message: deliver one that was buffered, if any.
    DeliverBuffered {
        /// The name.
        name: String,
        /// The key.
        key: Option<String>,
    },
}

/// The audit chain head and a few columns that travel with a snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub(crate) audit_seq: i64,
    pub(crate) audit_hash: String,
}

impl Head {
    pub(crate) fn genesis() -> Head {
        Head { audit_seq: 0, audit_hash: audit::GENESIS.to_string() }
    }
}

/// Reads a stored instance.
pub(crate) fn instance_of(row: &InstanceRow) -> Result<(Instance, Head), Error> {
    let instance: Instance = serde_json::from_str(&row.snapshot)
        .map_err(|source| Error::Decode { what: format!("snapshot of instance {}", row.id), source })?;
    Ok((instance, Head { audit_seq: row.audit_seq, audit_hash: row.audit_hash.clone() }))
}

/// What a change is about, for its audit entry.
pub(crate) struct About<'a> {
    /// The input kind (`started`, `task_completed`, ...).
    pub(crate) kind: &'static str,
    /// Who.
    pub(crate) actor: Actor,
    /// The step concerned.
    pub(crate) step: Option<String>,
    /// The input, summarised.
    pub(crate) input: Value,
    /// The caller's idempotency key.
    pub(crate) idempotency_key: Option<&'a str>,
}

/// Builds the change for a transition from `before` (none at start) to `after`.
pub(crate) fn change_for(
    process: &Process,
    before: Option<(&Instance, &Head)>,
    after: &Instance,
    effects: &[Effect],
    events: &[Event],
    about: About<'_>,
    now: jiff::Timestamp,
) -> Result<(Change, Head), Error> {
    let now_ms = ms(now);
    let mut change = Change::default();
    let task_row = |t: &Task| TaskRow {
        id: t.id.clone(),
        instance_id: after.id.clone(),
        dealer: after.dealer.clone(),
        process_id: after.process.clone(),
        step: t.step.clone(),
        title_zh: t.title.zh.clone().unwrap_or_default(),
        title_en: t.title.en.clone().unwrap_or_default(),
        roles: t.roles.clone(),
        assignee: t.assignee.clone(),
        priority: t.priority.as_str().to_string(),
        due_at: t.due_at.map(ms),
        created_at: ms(t.created_at),
        business_key: after.business_key.clone(),
        form: t.form.clone(),
    };
    let timer_row = |t: &Timer| TimerRow {
        id: t.id.clone(),
        instance_id: after.id.clone(),
        dealer: after.dealer.clone(),
        fire_at: ms(t.fire_at),
    };
    let mut n_work = 0;
    let mut queue = |change: &mut Change, work: Work, key: Option<String>| -> Result<(), Error> {
        n_work += 1;
        let idempotency_key = key.unwrap_or_else(|| format!("{}@{}/{n_work}", after.id, after.revision));
        let effect =
            serde_json::to_string(&work).map_err(|source| Error::Decode { what: "an outbox effect".into(), source })?;
        change.outbox.push(NewOutbox {
            instance_id: after.id.clone(),
            dealer: after.dealer.clone(),
            effect,
            idempotency_key,
            available_at: now_ms,
        });
        Ok(())
    };
    for e in effects {
        match e {
            Effect::TaskOpened { task } | Effect::TaskChanged { task } => change.tasks_upserted.push(task_row(task)),
            Effect::TaskClosed { task, .. } => change.tasks_removed.push(task.clone()),
            Effect::TimerSet { timer } => change.timers_set.push(timer_row(timer)),
            Effect::TimerCancelled { timer } => change.timers_removed.push(timer.clone()),
            Effect::Subscribe { name, key } => {
                change.subscribed.push(Subscription {
                    dealer: after.dealer.clone(),
                    name: name.clone(),
                    key: key.clone(),
                    instance_id: after.id.clone(),
                });
                queue(&mut change, Work::DeliverBuffered { name: name.clone(), key: key.clone() }, None)?;
            }
            Effect::Unsubscribe { name, key } => change.unsubscribed.push(Subscription {
                dealer: after.dealer.clone(),
                name: name.clone(),
                key: key.clone(),
                instance_id: after.id.clone(),
            }),
            Effect::Invoke { idempotency_key, .. } => {
                queue(&mut change, Work::Effect { effect: Box::new(e.clone()) }, Some(idempotency_key.clone()))?
            }
            Effect::StartInstance { id, .. } => {
                queue(&mut change, Work::Effect { effect: Box::new(e.clone()) }, Some(format!("start:{id}")))?
            }
            Effect::NotifyParent { child, .. } => queue(
                &mut change,
                Work::Effect { effect: Box::new(e.clone()) },
                Some(format!("notify-parent:{child}")),
            )?,
            Effect::CancelChild { child } => {
                queue(&mut change, Work::Effect { effect: Box::new(e.clone()) }, Some(format!("cancel:{child}")))?
            }
            Effect::SendMessage { .. } => queue(&mut change, Work::Effect { effect: Box::new(e.clone()) }, None)?,
        }
    }

    let mut entry = Map::new();
    entry.insert("input".into(), about.input);
    entry.insert("revision".into(), json!(after.revision));
    if let Some(k) = about.idempotency_key {
        entry.insert("idempotency_key".into(), json!(k));
    }
    entry.insert("events".into(), serde_json::to_value(events).unwrap_or(Value::Null));
    entry.insert("diff".into(), diff(before.map(|(i, _)| &i.data), &after.data));
    let late: i64 = events
        .iter()
        .map(|e| match e {
            Event::TimerFired { late_secs, .. } => *late_secs,
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    if late > 0 {
        entry.insert("late_secs".into(), json!(late));
    }
    let draft = Draft {
        chain: after.id.clone(),
        actor: serde_json::to_value(&about.actor).unwrap_or(Value::Null),
        kind: about.kind.into(),
        step: about.step,
        entry: Value::Object(entry),
        definition_hash: Some(process.hash.0.clone()),
    };
    let head = before.map_or_else(Head::genesis, |(_, h)| h.clone());
    let row: AuditRow = audit::seal(draft, now_ms, head.audit_seq, &head.audit_hash);
    let new_head = Head { audit_seq: row.chain_seq, audit_hash: row.hash.clone() };
    change.audit.push(row);

    let snapshot =
        serde_json::to_string(after).map_err(|source| Error::Decode { what: "an instance snapshot".into(), source })?;
    let (status, outcome, ended_at) = match &after.status {
        // A running instance stopped by an incident is listed apart, so that administrators
        // find what waits for them without reading every snapshot.
        Status::Running if !after.incidents.is_empty() => ("incident", None, None),
        Status::Running => ("running", None, None),
        Status::Ended { outcome, at } => ("ended", Some(outcome.clone()), Some(ms(*at))),
    };
    let row = InstanceRow {
        id: after.id.clone(),
        dealer: after.dealer.clone(),
        process_id: after.process.clone(),
        hash: after.process_hash.clone(),
        business_key: after.business_key.clone(),
        parent_id: after.parent.as_ref().map(|p| p.instance.clone()),
        status: status.into(),
        outcome,
        revision: after.revision as i64,
        snapshot,
        started_at: ms(after.started_at),
        ended_at,
        audit_seq: new_head.audit_seq,
        audit_hash: new_head.audit_hash.clone(),
    };
    change.instance = Some((row, before.map(|(i, _)| i.revision as i64)));
    Ok((change, new_head))
}

/// The changed top-level data keys, each with its value before and after.
fn diff(before: Option<&Map<String, Value>>, after: &Map<String, Value>) -> Value {
    let empty = Map::new();
    let before = before.unwrap_or(&empty);
    let mut out = Map::new();
    for (k, v) in after {
        if before.get(k) != Some(v) {
            out.insert(k.clone(), json!({ "before": before.get(k), "after": v }));
        }
    }
    for (k, v) in before {
        if !after.contains_key(k) {
            out.insert(k.clone(), json!({ "before": v, "after": null }));
        }
    }
    Value::Object(out)
}

/// The audit kind, actor, step and summary of an input applied to `inst`.
pub(crate) fn describe<'a>(
    process: &Process,
    inst: &Instance,
    input: &Input,
    idempotency_key: Option<&'a str>,
) -> About<'a> {
    let task_step = |task: &str| inst.task(task).map(|t| t.step.clone());
    let user_actor = |user: &machine::User, task: &str| Actor::User {
        id: user.id.clone(),
        role: inst.task(task).and_then(|t| user.role_among(&t.roles)).map(str::to_string),
    };
    let token_step = |token: Option<u64>| token.and_then(|t| inst.token(t)).map(|t| process.step(t.step).id.clone());
    let (kind, actor, step, summary) = match input {
        Input::Claim { task, by } => ("task_claimed", user_actor(by, task), task_step(task), json!({ "task": task })),
        Input::Unclaim { task, by } => {
            ("task_unclaimed", user_actor(by, task), task_step(task), json!({ "task": task }))
        }
        Input::Delegate { task, by, to } => {
            ("task_delegated", user_actor(by, task), task_step(task), json!({ "task": task, "to": to.id }))
        }
        Input::Complete { task, by, .. } => {
            ("task_completed", user_actor(by, task), task_step(task), json!({ "task": task }))
        }
        Input::Message { name, key, .. } => {
            let step = inst
                .tokens
                .iter()
                .find(|t| matches!(&t.wait, machine::Wait::Message { name: n, .. } if n == name))
                .map(|t| process.step(t.step).id.clone());
            ("message_received", Actor::Message, step, json!({ "name": name, "key": key }))
        }
        Input::TimerFired { timer } => {
            let step = token_step(inst.timers.iter().find(|t| &t.id == timer).and_then(|t| t.token));
            ("timer_fired", Actor::Timer, step, json!({ "timer": timer }))
        }
        Input::ActionSucceeded { job, .. } | Input::ActionFailed { job, .. } => {
            let j = inst.jobs.iter().find(|j| &j.id == job);
            let name = j.map(|j| j.action.clone()).unwrap_or_default();
            let kind =
                if matches!(input, Input::ActionSucceeded { .. }) { "action_succeeded" } else { "action_failed" };
            (kind, Actor::Action { name }, j.map(|j| j.origin.clone()), json!({ "job": job }))
        }
        Input::ChildEnded { child, outcome, .. } => {
            let step = inst.children.iter().find(|c| &c.instance == child).map(|c| c.step.clone());
            ("child_ended", Actor::System, step, json!({ "child": child, "outcome": outcome }))
        }
        Input::RetryIncident { incident, by } | Input::SkipIncident { incident, by } => {
            let step = inst.incidents.iter().find(|i| &i.id == incident).map(|i| i.step.clone());
            let kind =
                if matches!(input, Input::RetryIncident { .. }) { "incident_retried" } else { "incident_skipped" };
            (kind, Actor::User { id: by.id.clone(), role: None }, step, json!({ "incident": incident }))
        }
        Input::Cancel { by, reason } => ("cancelled", by.clone(), None, json!({ "reason": reason })),
    };
    About { kind, actor, step, input: summary, idempotency_key }
}
