//! Moving a running instance onto a new version of its process, along the pack's migration map.
//!
//! Instances stay on the version they started with unless an operator asks to move one. This
//! is the pure part of that move: given the instance's snapshot, the old and new definitions
//! and the map (old step -> new step), it returns the migrated snapshot with the effects and
//! events that explain it, or refuses with every reason. It never stores anything; the runtime
//! stores the result in one transaction and records the [`MigrationRecord`] in the audit trail.
//!
//! A token whose step keeps its id and its definition stays as it is, with its open task and
//! timers. A token whose step changed or was mapped to another step leaves it (its tasks are
//! cancelled, its timers disarmed, its subscription dropped) and enters the new step through the
//! core's own entry path, so the new step opens its task and arms its timers exactly as a normal
//! arrival would. The core enters a step only when an input says so; the move uses a transient
//! incident on the token that is retried at once, so no entry logic is duplicated here, and the
//! incident never leaves this function.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use jiff::Timestamp;
use machine::{Effect, Event, Incident, IncidentKind, Input, Instance, Resume, User, Wait};
use model::Process;
use serde::Serialize;
use serde_json::{Map, Value};

/// The result of a migration.
#[derive(Debug, Clone, PartialEq)]
pub struct Migrated {
    /// The instance on the new version.
    pub instance: Instance,
    /// What the runtime must do (close and open tasks, disarm and arm timers), in order.
    pub effects: Vec<Effect>,
    /// What happened at the moved steps, for the trace.
    pub events: Vec<Event>,
    /// The audit record of the move.
    pub record: MigrationRecord,
}

/// The audit record of one instance's migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationRecord {
    /// The instance.
    pub instance: String,
    /// The process.
    pub process: String,
    /// The old definition's hash.
    pub from_hash: String,
    /// The new definition's hash.
    pub to_hash: String,
    /// The operator who asked for the move.
    pub by: String,
    /// Where each token went.
    pub moves: Vec<Move>,
}

/// Where one token went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Move {
    /// The token.
    pub token: u64,
    /// The old step.
    pub from: String,
    /// The new step.
    pub to: String,
    /// Whether the token entered its step anew (its tasks re-created, its timers re-armed);
    /// otherwise it stayed as it was.
    pub reentered: bool,
}

/// Why an instance cannot be migrated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum Refusal {
    /// The instance has ended.
    #[error("the instance has ended")]
    Ended,
    /// The instance runs another definition than the one given as old.
    #[error("the instance runs the definition {running}, not {given}")]
    WrongVersion {
        /// What it runs.
        running: String,
        /// What was given.
        given: String,
    },
    /// The new process is another process.
    #[error("the new definition is of the process `{to}`, not `{from}`")]
    OtherProcess {
        /// The instance's process.
        from: String,
        /// The given one.
        to: String,
    },
    /// A token's step is gone and the map does not say where its tokens go.
    #[error(
        "a token stands at `{step}`, which the new version does not have, and the migration map does not say where it goes"
    )]
    Unmapped {
        /// The old step.
        step: String,
    },
    /// The map names a step the new version does not have.
    #[error("the migration map sends `{from}` to `{to}`, which the new version does not have")]
    NoSuchTarget {
        /// The old step.
        from: String,
        /// The target.
        to: String,
    },
    /// A token waits for something that cannot be abandoned safely.
    #[error("a token at `{step}` waits for {what}; migrate once it has arrived")]
    Busy {
        /// The step.
        step: String,
        /// What it waits for, in words.
        what: String,
    },
    /// A parallel split or join the instance is inside is gone or changed.
    #[error("the instance is inside the parallel step `{split}`, whose split or join the new version changes")]
    Parallel {
        /// The split.
        split: String,
    },
    /// The instance data does not fit the new data schema.
    #[error("the instance data does not fit the new version: {errors}")]
    Data {
        /// The errors, by field.
        errors: String,
    },
    /// The core refused the entry into a new step.
    #[error("entering `{step}` on the new version failed: {reason}")]
    Entry {
        /// The step.
        step: String,
        /// The core's reason.
        reason: String,
    },
}

/// Migrates an instance from `from` to `to`, moving tokens as `map` says (steps missing from
/// the map keep their id). `by` is the operator; `now` the current time.
pub fn migrate(
    instance: &Instance,
    from: &Process,
    to: &Process,
    map: &IndexMap<String, String>,
    by: &str,
    now: Timestamp,
) -> Result<Migrated, Vec<Refusal>> {
    let mut refusals = Vec::new();
    if instance.is_ended() {
        return Err(vec![Refusal::Ended]);
    }
    if instance.process_hash != from.hash.0 {
        return Err(vec![Refusal::WrongVersion { running: instance.process_hash.clone(), given: from.hash.0.clone() }]);
    }
    if to.id != from.id {
        return Err(vec![Refusal::OtherProcess { from: from.id.clone(), to: to.id.clone() }]);
    }
    for (old, new) in map {
        if to.step_idx(new).is_none() {
            refusals.push(Refusal::NoSuchTarget { from: old.clone(), to: new.clone() });
        }
    }
    let data_errors = data_errors(to, &instance.data);
    if !data_errors.is_empty() {
        refusals.push(Refusal::Data { errors: data_errors.join("; ") });
    }

    let same_definition = |id: &str| {
        let pointer = format!("/process/steps/{id}");
        from.document.pointer(&pointer).is_some() && from.document.pointer(&pointer) == to.document.pointer(&pointer)
    };
    let mut inst = instance.clone();
    let mut moves = Vec::new();
    for token in &mut inst.tokens {
        let old_id = from.step(token.step).id.clone();
        let new_id = map.get(&old_id).cloned().unwrap_or_else(|| old_id.clone());
        let Some(new_idx) = to.step_idx(&new_id) else {
            if !map.contains_key(&old_id) {
                refusals.push(Refusal::Unmapped { step: old_id });
            }
            continue;
        };
        let reenter = new_id != old_id || !same_definition(&old_id);
        if reenter {
            let busy = match &token.wait {
                Wait::Job { .. } => Some("an action's answer"),
                Wait::Child { .. } => Some("a subprocess it started"),
                _ => None,
            };
            if let Some(what) = busy {
                refusals.push(Refusal::Busy { step: old_id.clone(), what: what.into() });
                continue;
            }
        }
        token.step = new_idx;
        moves.push(Move { token: token.id, from: old_id, to: new_id, reentered: reenter });
    }
    for join in &mut inst.joins {
        let (split_id, join_id) = (from.step(join.split).id.clone(), from.step(join.join).id.clone());
        match (to.step_idx(&split_id), to.step_idx(&join_id)) {
            (Some(s), Some(j)) if same_definition(&split_id) && same_definition(&join_id) => {
                join.split = s;
                join.join = j;
            }
            _ => refusals.push(Refusal::Parallel { split: split_id }),
        }
    }
    if !refusals.is_empty() {
        return Err(refusals);
    }

    // Leave the old steps of the tokens that move: what they had open is cancelled, as the
    // core does when a token leaves a step.
    let mut effects = Vec::new();
    let mut events = Vec::new();
    let mut pending = Vec::new();
    for m in moves.iter().filter(|m| m.reentered) {
        for t in inst.tasks.iter().filter(|t| t.token == m.token) {
            effects.push(Effect::TaskClosed { task: t.id.clone(), completed: false });
            events.push(Event::TaskCancelled { task: t.id.clone(), step: t.step.clone() });
        }
        inst.tasks.retain(|t| t.token != m.token);
        for t in inst.timers.iter().filter(|t| t.token == Some(m.token)) {
            effects.push(Effect::TimerCancelled { timer: t.id.clone() });
        }
        inst.timers.retain(|t| t.token != Some(m.token));
        inst.incidents.retain(|i| i.token != Some(m.token));
        let incident = format!("{}-migration-{}", inst.id, m.token);
        if let Some(token) = inst.tokens.iter_mut().find(|t| t.id == m.token) {
            if let Wait::Message { name, key } = &token.wait {
                effects.push(Effect::Unsubscribe { name: name.clone(), key: key.clone() });
            }
            token.entered_at = now;
            token.wait = Wait::Incident { incident: incident.clone() };
        }
        inst.incidents.push(Incident {
            id: incident.clone(),
            step: m.to.clone(),
            token: Some(m.token),
            kind: IncidentKind::Flow,
            message: format!("moving from `{}` to `{}` on the new version", m.from, m.to),
            at: now,
            resume: Resume::Enter,
        });
        pending.push((incident, m.to.clone()));
    }
    inst.process_hash = to.hash.0.clone();
    inst.process_version = to.version;
    if pending.is_empty() {
        inst.revision += 1;
    }

    let operator = User::new(by, Vec::<String>::new());
    for (incident, step) in pending {
        if inst.is_ended() {
            break;
        }
        let input = Input::RetryIncident { incident: incident.clone(), by: operator.clone() };
        match machine::step(to, &inst, &input, now) {
            Ok(t) => {
                inst = t.instance;
                effects.extend(t.effects);
                events.extend(
                    t.events
                        .into_iter()
                        .filter(|e| !matches!(e, Event::IncidentResolved { incident: i, .. } if *i == incident)),
                );
            }
            Err(r) => return Err(vec![Refusal::Entry { step, reason: r.to_string() }]),
        }
    }
    let record = MigrationRecord {
        instance: inst.id.clone(),
        process: to.id.clone(),
        from_hash: from.hash.0.clone(),
        to_hash: to.hash.0.clone(),
        by: by.into(),
        moves,
    };
    Ok(Migrated { instance: inst, effects, events, record })
}

/// The errors of the instance's declared variables against the new data schema.
fn data_errors(to: &Process, data: &Map<String, Value>) -> Vec<String> {
    let declared = to.data.schema.get("properties").and_then(Value::as_object);
    let projection: Map<String, Value> = data
        .iter()
        .filter(|(k, _)| declared.is_some_and(|d| d.contains_key(*k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    machine::schema_errors(&to.data.validator, &Value::Object(projection))
        .into_iter()
        .map(|e| format!("{} {}", e.path, e.message))
        .collect()
}

/// The migration maps of a pack for instances started on `installed`, by process.
pub fn maps(pack: &crate::Pack, installed: &semver::Version) -> BTreeMap<String, IndexMap<String, String>> {
    pack.processes.iter().filter_map(|p| Some((p.id.clone(), pack.migration_map(installed, &p.id)?.clone()))).collect()
}
