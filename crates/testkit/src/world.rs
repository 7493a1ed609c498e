//! An in-memory world on a virtual clock: the processes of a pack, their instances, and a tiny
//! runtime that applies effects (starts children, routes messages, fires timers in due order,
//! answers actions from canned replies). Nothing is persisted and time moves only when told.
//!
//! It is what `sopflow test` runs scenarios in, and what tests of the standard pack use to drive
//! several linked processes (a service order that starts a parts purchase and waits for its
//! arrival message) without a database.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use machine::{Actor, Effect, Event, Input, Instance, Rejection, Start, Transition};
use model::Process;
use serde_json::{Map, Value};

/// A canned answer for an action.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Succeed with this output.
    Ok(Value),
    /// Fail with this error.
    Fail {
        /// The error.
        error: String,
        /// Whether trying again may help.
        retryable: bool,
    },
}

/// One event, with when and in which instance it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    /// When.
    pub at: Timestamp,
    /// The instance.
    pub instance: String,
    /// The process.
    pub process: String,
    /// What happened.
    pub event: Event,
}

/// An instance and its process.
#[derive(Debug, Clone)]
pub struct Slot {
    /// The process it runs.
    pub process: Arc<Process>,
    /// Its state.
    pub instance: Instance,
}

/// The world.
#[derive(Debug)]
pub struct World {
    processes: BTreeMap<String, Arc<Process>>,
    /// The instances, in the order they started.
    pub slots: Vec<Slot>,
    /// The virtual clock.
    pub now: Timestamp,
    /// Canned action replies, by action name.
    pub replies: BTreeMap<String, Reply>,
    /// Everything that happened.
    pub log: Vec<Logged>,
    /// Messages sent when no instance waited for them, kept for the next one that does.
    pub buffered: Vec<(String, String, Option<String>, Value)>,
    work: VecDeque<(String, Input)>,
    /// Inputs that the core refused while the world applied effects (a sign of a broken link).
    pub refused: Vec<(String, Rejection)>,
}

impl World {
    /// A world with processes, starting at `now`.
    pub fn new(processes: impl IntoIterator<Item = Arc<Process>>, now: Timestamp) -> World {
        let mut replies = BTreeMap::new();
        replies.insert("notify".to_string(), Reply::Ok(serde_json::json!({ "delivered": true })));
        World {
            processes: processes.into_iter().map(|p| (p.id.clone(), p)).collect(),
            slots: Vec::new(),
            now,
            replies,
            log: Vec::new(),
            buffered: Vec::new(),
            work: VecDeque::new(),
            refused: Vec::new(),
        }
    }

    /// A process by id.
    pub fn process(&self, id: &str) -> Option<&Arc<Process>> {
        self.processes.get(id)
    }

    /// An instance by id.
    pub fn slot(&self, id: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| s.instance.id == id)
    }

    /// The most recent instance of a process.
    pub fn latest_of(&self, process: &str) -> Option<&Slot> {
        self.slots.iter().rev().find(|s| s.process.id == process)
    }

    /// Starts an instance and runs everything that follows from it.
    pub fn start(&mut self, process: &str, start: Start) -> Result<String, Rejection> {
        let Some(p) = self.processes.get(process).cloned() else {
            return Err(Rejection::Stale(format!("process {process}")));
        };
        let id = start.id.clone();
        let transition = machine::start(&p, start, self.now)?;
        self.slots.push(Slot { process: Arc::clone(&p), instance: transition.instance.clone() });
        self.absorb(&id, transition);
        self.settle();
        self.fire_due();
        Ok(id)
    }

    /// Applies an input to an instance and runs everything that follows from it.
    pub fn apply(&mut self, instance: &str, input: Input) -> Result<(), Rejection> {
        self.apply_one(instance, &input)?;
        self.settle();
        self.fire_due();
        Ok(())
    }

    /// Fires the timers already due (a wait that ends at once, an overdue reminder), as a
    /// runtime would right after the transaction that armed them.
    fn fire_due(&mut self) {
        self.advance_to(self.now);
    }

    fn apply_one(&mut self, instance: &str, input: &Input) -> Result<(), Rejection> {
        let Some(slot) = self.slots.iter().find(|s| s.instance.id == instance) else {
            return Err(Rejection::Stale(instance.into()));
        };
        let transition = machine::step(&slot.process, &slot.instance, input, self.now)?;
        self.absorb(instance, transition);
        Ok(())
    }

    /// Records a transition and queues what its effects cause.
    fn absorb(&mut self, instance: &str, t: Transition) {
        let process = t.instance.process.clone();
        let dealer = t.instance.dealer.clone();
        for event in &t.events {
            self.log.push(Logged {
                at: self.now,
                instance: instance.into(),
                process: process.clone(),
                event: event.clone(),
            });
        }
        if let Some(slot) = self.slots.iter_mut().find(|s| s.instance.id == instance) {
            slot.instance = t.instance;
        }
        for effect in t.effects {
            match effect {
                Effect::Invoke { job, action, .. } => match self.replies.get(&action) {
                    Some(Reply::Ok(output)) => {
                        self.work.push_back((instance.into(), Input::ActionSucceeded { job, output: output.clone() }))
                    }
                    Some(Reply::Fail { error, retryable }) => self.work.push_back((
                        instance.into(),
                        Input::ActionFailed { job, error: error.clone(), retryable: *retryable },
                    )),
                    None => {} // Left pending: the scenario answers it.
                },
                Effect::StartInstance { id, process, data, business_key, parent } => {
                    let start = Start {
                        id: id.clone(),
                        dealer: dealer.clone(),
                        business_key,
                        data,
                        by: Actor::System,
                        parent: Some(parent.clone()),
                    };
                    let result = match self.processes.get(&process).cloned() {
                        Some(p) => machine::start(&p, start, self.now).map(|t| (p, t)),
                        None => Err(Rejection::Stale(format!("process {process}"))),
                    };
                    match result {
                        Ok((p, t)) => {
                            self.slots.push(Slot { process: p, instance: t.instance.clone() });
                            self.absorb(&id, t);
                        }
                        Err(r) => {
                            // The parent learns that its child could not start.
                            self.refused.push((id.clone(), r.clone()));
                            self.work.push_back((
                                parent.instance.clone(),
                                Input::ChildEnded { child: id, outcome: "failed_to_start".into(), result: Value::Null },
                            ));
                        }
                    }
                }
                Effect::SendMessage { name, key, payload } => self.route(&dealer, name, key, payload),
                Effect::NotifyParent { parent, child, outcome, result } => {
                    self.work.push_back((parent, Input::ChildEnded { child, outcome, result }))
                }
                Effect::CancelChild { child } => self
                    .work
                    .push_back((child, Input::Cancel { by: Actor::System, reason: "the parent was cancelled".into() })),
                Effect::Subscribe { name, key } => {
                    // A message that arrived before anyone waited is delivered now.
                    if let Some(pos) = self
                        .buffered
                        .iter()
                        .position(|(d, n, k, _)| d == &dealer && n == &name && (key.is_none() || k == &key))
                    {
                        let (_, n, k, payload) = self.buffered.remove(pos);
                        self.work.push_back((instance.into(), Input::Message { name: n, key: k, payload }));
                    }
                }
                Effect::TaskOpened { .. }
                | Effect::TaskChanged { .. }
                | Effect::TaskClosed { .. }
                | Effect::TimerSet { .. }
                | Effect::TimerCancelled { .. }
                | Effect::Unsubscribe { .. } => {}
            }
        }
    }

    fn route(&mut self, dealer: &str, name: String, key: Option<String>, payload: Value) {
        let waiting: Vec<String> = self
            .slots
            .iter()
            .filter(|s| s.instance.dealer == dealer && !s.instance.is_ended())
            .filter(|s| {
                s.instance.tokens.iter().any(|t| {
                    matches!(&t.wait, machine::Wait::Message { name: n, key: k } if n == &name && (k.is_none() || k == &key))
                })
            })
            .map(|s| s.instance.id.clone())
            .collect();
        if waiting.is_empty() {
            self.buffered.push((dealer.into(), name, key, payload));
            return;
        }
        for id in waiting {
            self.work
                .push_back((id, Input::Message { name: name.clone(), key: key.clone(), payload: payload.clone() }));
        }
    }

    /// Runs queued work until none is left.
    fn settle(&mut self) {
        let mut guard = 0;
        while let Some((instance, input)) = self.work.pop_front() {
            guard += 1;
            if guard > 100_000 {
                break; // A cycle of instances feeding each other forever; the log shows it.
            }
            if let Err(r) = self.apply_one(&instance, &input) {
                self.refused.push((instance, r));
            }
        }
    }

    /// Moves the clock forward, firing every timer that falls due on the way, in due order and
    /// at its own time.
    pub fn advance(&mut self, by: SignedDuration) {
        let target = self.now.checked_add(by).unwrap_or(self.now);
        self.advance_to(target);
    }

    /// Moves the clock to `target` (never backwards).
    pub fn advance_to(&mut self, target: Timestamp) {
        loop {
            let next = self
                .slots
                .iter()
                .filter(|s| !s.instance.is_ended())
                .flat_map(|s| s.instance.timers.iter().map(move |t| (t.fire_at, t.id.clone(), s.instance.id.clone())))
                .filter(|(at, _, _)| *at <= target)
                .min();
            let Some((at, timer, instance)) = next else { break };
            if at > self.now {
                self.now = at;
            }
            match self.apply_one(&instance, &Input::TimerFired { timer }) {
                Ok(()) => self.settle(),
                Err(r) => self.refused.push((instance, r)),
            }
        }
        if target > self.now {
            self.now = target;
        }
    }

    /// The start data of a new instance, for callers building a [`Start`].
    pub fn start_args(
        id: &str,
        dealer: &str,
        business_key: Option<String>,
        data: Map<String, Value>,
        by: Actor,
    ) -> Start {
        Start { id: id.into(), dealer: dealer.into(), business_key, data, by, parent: None }
    }
}
