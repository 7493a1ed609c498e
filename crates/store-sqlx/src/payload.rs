//! The net effect of a batch of changes on each table, and (for PostgreSQL) the batch as the
//! one JSON document `sopflow_apply` takes (see the `0002_apply_batch` migration).
//!
//! Within a batch an instance may change several times; its last row is written and checked
//! against the revision the batch's first change of it expected. A task or timer opened and
//! closed within the batch is never written; one closed and then reopened (same id) is written
//! as its last state. So the per-table lists are disjoint and their order does not matter.

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use store::{Change, InstanceRow, Millis, Subscription, TaskRow, TimerRow};

/// The last state of each key, in the order keys were first touched (`None`: removed).
fn net<'a, T>(items: impl Iterator<Item = (String, Option<&'a T>)>) -> Vec<(String, Option<&'a T>)> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<(String, Option<&T>)> = Vec::new();
    for (k, v) in items {
        match index.get(&k) {
            Some(&i) => out[i].1 = v,
            None => {
                index.insert(k.clone(), out.len());
                out.push((k, v));
            }
        }
    }
    out
}

fn sub_key(s: &Subscription) -> String {
    serde_json::to_string(&(&s.dealer, &s.name, &s.key, &s.instance_id)).unwrap_or_default()
}

/// What a batch leaves in each table.
pub(crate) struct Net<'a> {
    /// The last row of each instance, with the revision expected before the batch (-1: new),
    /// sorted by id so that writers lock rows in one order.
    pub(crate) instances: Vec<(&'a InstanceRow, i64)>,
    tasks: Vec<(String, Option<&'a TaskRow>)>,
    timers: Vec<(String, Option<&'a TimerRow>)>,
    /// Every subscription added or removed (deleted first, then the present ones inserted).
    pub(crate) subscriptions_touched: Vec<&'a Subscription>,
    subscriptions: Vec<(String, Option<&'a Subscription>)>,
}

impl<'a> Net<'a> {
    pub(crate) fn of(changes: &'a [Change]) -> Net<'a> {
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut instances: Vec<(&InstanceRow, i64)> = Vec::new();
        for c in changes {
            let Some((row, expected)) = &c.instance else { continue };
            match index.get(row.id.as_str()) {
                Some(&i) => instances[i].0 = row,
                None => {
                    index.insert(&row.id, instances.len());
                    instances.push((row, expected.unwrap_or(-1)));
                }
            }
        }
        instances.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        let tasks = net(changes.iter().flat_map(|c| {
            c.tasks_upserted
                .iter()
                .map(|t| (t.id.clone(), Some(t)))
                .chain(c.tasks_removed.iter().map(|id| (id.clone(), None)))
        }));
        let timers = net(changes.iter().flat_map(|c| {
            c.timers_set
                .iter()
                .map(|t| (t.id.clone(), Some(t)))
                .chain(c.timers_removed.iter().map(|id| (id.clone(), None)))
        }));
        let subscriptions = net(changes.iter().flat_map(|c| {
            c.unsubscribed.iter().map(|s| (sub_key(s), None)).chain(c.subscribed.iter().map(|s| (sub_key(s), Some(s))))
        }));
        let subscriptions_touched = changes.iter().flat_map(|c| c.subscribed.iter().chain(&c.unsubscribed)).collect();
        Net { instances, tasks, timers, subscriptions_touched, subscriptions }
    }

    pub(crate) fn tasks_removed(&self) -> impl Iterator<Item = &str> {
        self.tasks.iter().filter(|(_, t)| t.is_none()).map(|(k, _)| k.as_str())
    }

    pub(crate) fn tasks_upserted(&self) -> impl Iterator<Item = &'a TaskRow> + '_ {
        self.tasks.iter().filter_map(|(_, t)| *t)
    }

    pub(crate) fn timers_removed(&self) -> impl Iterator<Item = &str> {
        self.timers.iter().filter(|(_, t)| t.is_none()).map(|(k, _)| k.as_str())
    }

    pub(crate) fn timers_set(&self) -> impl Iterator<Item = &'a TimerRow> + '_ {
        self.timers.iter().filter_map(|(_, t)| *t)
    }

    pub(crate) fn subscriptions(&self) -> impl Iterator<Item = &'a Subscription> + '_ {
        self.subscriptions.iter().filter_map(|(_, s)| *s)
    }

    /// The instances the batch writes.
    pub(crate) fn instance_ids(&self) -> Vec<String> {
        self.instances.iter().map(|(r, _)| r.id.clone()).collect()
    }
}

/// The batch as one JSON object of per-table lists (absent when empty).
pub(crate) fn document(changes: &[Change], net: &Net<'_>) -> String {
    let mut doc = Map::new();
    let mut push = |key: &str, items: Vec<Value>| {
        if !items.is_empty() {
            doc.insert(key.into(), Value::Array(items));
        }
    };
    push(
        "instances",
        net.instances
            .iter()
            .map(|(r, prev)| {
                json!({
                    "id": r.id, "dealer": r.dealer, "process_id": r.process_id, "hash": r.hash,
                    "business_key": r.business_key, "parent_id": r.parent_id, "status": r.status,
                    "outcome": r.outcome, "revision": r.revision, "prev_revision": prev,
                    "snapshot": r.snapshot, "started_at": r.started_at, "ended_at": r.ended_at,
                    "audit_seq": r.audit_seq, "audit_hash": r.audit_hash,
                })
            })
            .collect(),
    );
    push("tasks_removed", net.tasks_removed().map(|k| json!(k)).collect());
    push(
        "tasks",
        net.tasks_upserted()
            .map(|t| {
                json!({
                    "id": t.id, "instance_id": t.instance_id, "dealer": t.dealer, "process_id": t.process_id,
                    "step": t.step, "title_zh": t.title_zh, "title_en": t.title_en,
                    "roles": Value::from(t.roles.clone()).to_string(), "assignee": t.assignee,
                    "priority": t.priority, "due_at": t.due_at, "due_key": t.due_at.unwrap_or(Millis::MAX),
                    "created_at": t.created_at, "business_key": t.business_key, "form": t.form,
                })
            })
            .collect(),
    );
    push("timers_removed", net.timers_removed().map(|k| json!(k)).collect());
    push(
        "timers",
        net.timers_set()
            .map(|t| json!({ "id": t.id, "instance_id": t.instance_id, "dealer": t.dealer, "fire_at": t.fire_at }))
            .collect(),
    );
    let sub_json =
        |s: &Subscription| json!({ "dealer": s.dealer, "name": s.name, "key": s.key, "instance_id": s.instance_id });
    push("subscriptions_touched", net.subscriptions_touched.iter().map(|s| sub_json(s)).collect());
    push("subscriptions", net.subscriptions().map(sub_json).collect());
    push(
        "buffered",
        changes
            .iter()
            .flat_map(|c| &c.buffered)
            .map(|b| json!({ "dealer": b.dealer, "name": b.name, "key": b.key, "payload": b.payload, "at": b.at }))
            .collect(),
    );
    push("buffered_taken", changes.iter().flat_map(|c| &c.buffered_taken).map(|id| json!(id)).collect());
    push(
        "outbox",
        changes
            .iter()
            .flat_map(|c| &c.outbox)
            .map(|o| {
                json!({
                    "instance_id": o.instance_id, "dealer": o.dealer, "effect": o.effect,
                    "idempotency_key": o.idempotency_key, "available_at": o.available_at,
                })
            })
            .collect(),
    );
    push("outbox_done", changes.iter().flat_map(|c| &c.outbox_done).map(|s| json!(s)).collect());
    push(
        "audit",
        changes
            .iter()
            .flat_map(|c| &c.audit)
            .map(|a| {
                json!({
                    "chain": a.chain, "chain_seq": a.chain_seq, "at": a.at, "actor": a.actor, "kind": a.kind,
                    "step": a.step, "entry": a.entry, "definition_hash": a.definition_hash,
                    "prev_hash": a.prev_hash, "hash": a.hash,
                })
            })
            .collect(),
    );
    Value::Object(doc).to_string()
}
