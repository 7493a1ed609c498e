//! The step function: applies one input to an instance and runs the flow forward until every
//! token waits (for a person, a timer, an action, a message, a child, a join or an
//! administrator).
//!
//! Nothing here reads a clock or makes an id at random: `now` is an argument and ids are
//! derived from the instance's counter, so the same inputs always give the same transition.
//! Failures of the process's own logic (a guard that errors, an expression that hits a limit,
//! an action that keeps failing) are not errors of this function: they become incidents on
//! the instance, recorded and visible, and the input is still accepted.

use std::cell::OnceCell;
use std::collections::{BTreeSet, VecDeque};

use jiff::Timestamp;
use model::{
    AssigneeRule, DurationRule, Moment, Priority, PriorityRule, Process, StepIdx, StepKind, TaskDef, TimerDef,
    ValueRule,
};
use serde_json::{Map, Value};

use crate::env::Env;
use crate::instance::*;
use crate::io::*;

/// How many steps one input may run through before the core assumes a loop that never waits.
const STEP_BUDGET: u32 = 1_000;

/// Starts an instance.
pub fn start(process: &Process, start: Start, now: Timestamp) -> Result<Transition, Rejection> {
    let errors = check_data(process, &start.data, true);
    if !errors.is_empty() {
        return Err(Rejection::InvalidData(errors));
    }
    let instance = Instance {
        id: start.id,
        process: process.id.clone(),
        process_version: process.version,
        process_hash: process.hash.0.clone(),
        dealer: start.dealer,
        business_key: start.business_key,
        status: Status::Running,
        data: start.data.clone(),
        done_by: Default::default(),
        tokens: Vec::new(),
        tasks: Vec::new(),
        timers: Vec::new(),
        jobs: Vec::new(),
        joins: Vec::new(),
        incidents: Vec::new(),
        parent: start.parent,
        children: Vec::new(),
        started_at: now,
        seq: 0,
        revision: 0,
    };
    let mut run = Run::new(process, instance, now);
    run.events.push(Event::Started {
        process: process.id.clone(),
        version: process.version,
        hash: process.hash.0.clone(),
        by: start.by,
        data: Value::Object(start.data),
    });
    let tid = run.inst.next_token_id();
    run.inst.tokens.push(Token { id: tid, step: process.start, entered_at: now, fork: None, wait: Wait::Entering });
    run.queue.push_back(tid);
    run.drain();
    Ok(run.finish())
}

/// Applies an input to an instance.
pub fn step(process: &Process, instance: &Instance, input: &Input, now: Timestamp) -> Result<Transition, Rejection> {
    if instance.is_ended() {
        return Err(Rejection::Ended);
    }
    let mut run = Run::new(process, instance.clone(), now);
    match input {
        Input::Claim { task, by } => run.claim(task, by)?,
        Input::Unclaim { task, by } => run.unclaim(task, by)?,
        Input::Delegate { task, by, to } => run.delegate(task, by, to)?,
        Input::Complete { task, by, form } => run.complete(task, by, form)?,
        Input::Message { name, key, payload } => run.message(name, key.as_deref(), payload)?,
        Input::TimerFired { timer } => run.timer_fired(timer)?,
        Input::ActionSucceeded { job, output } => run.action_succeeded(job, output)?,
        Input::ActionFailed { job, error, retryable } => run.action_failed(job, error, *retryable)?,
        Input::ChildEnded { child, outcome, result } => run.child_ended(child, outcome, result)?,
        Input::RetryIncident { incident, by } => run.resolve_incident(incident, by, true)?,
        Input::SkipIncident { incident, by } => run.resolve_incident(incident, by, false)?,
        Input::Cancel { by, reason } => run.cancel(by, reason),
    }
    run.drain();
    Ok(run.finish())
}

/// Checks data against the process's data schema. At start, every field must be a declared
/// variable; the schema's own rules apply to the declared variables.
fn check_data(process: &Process, data: &Map<String, Value>, strict_fields: bool) -> Vec<FieldError> {
    let declared = process.data.schema.get("properties").and_then(Value::as_object);
    let mut errors = Vec::new();
    let mut projection = Map::new();
    for (k, v) in data {
        if declared.is_some_and(|d| d.contains_key(k)) {
            projection.insert(k.clone(), v.clone());
        } else if strict_fields {
            errors.push(FieldError { path: format!("/{k}"), message: "is not a variable of this process".into() });
        }
    }
    errors.extend(schema_errors(&process.data.validator, &Value::Object(projection)));
    errors
}

/// Every error a validator finds, as field errors with JSON pointers.
pub fn schema_errors(validator: &jsonschema::Validator, value: &Value) -> Vec<FieldError> {
    use jsonschema::error::ValidationErrorKind as K;
    let mut out = Vec::new();
    for e in validator.iter_errors(value) {
        let at = e.instance_path().as_str().to_string();
        match e.kind() {
            K::Required { property } => out.push(FieldError {
                path: format!("{at}/{}", property.as_str().unwrap_or_default()),
                message: "is required".into(),
            }),
            K::AdditionalProperties { unexpected } => {
                for field in unexpected {
                    out.push(FieldError {
                        path: format!("{at}/{field}"),
                        message: "is not a field of this form".into(),
                    });
                }
            }
            _ => out.push(FieldError { path: if at.is_empty() { "/".into() } else { at }, message: e.to_string() }),
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// One application of the step function.
struct Run<'p> {
    p: &'p Process,
    inst: Instance,
    now: Timestamp,
    effects: Vec<Effect>,
    events: Vec<Event>,
    queue: VecDeque<u64>,
    budget: u32,
    params: OnceCell<script::Dynamic>,
    changed: bool,
    /// Where each moved token came from, for the `from` of its next `Entered` event.
    came_from: Vec<(u64, StepIdx)>,
}

/// Why an expression could not be used; becomes an incident.
struct ExprFailure(String);

impl<'p> Run<'p> {
    fn new(p: &'p Process, inst: Instance, now: Timestamp) -> Self {
        Run {
            p,
            inst,
            now,
            effects: Vec::new(),
            events: Vec::new(),
            queue: VecDeque::new(),
            budget: STEP_BUDGET,
            params: OnceCell::new(),
            changed: false,
            came_from: Vec::new(),
        }
    }

    fn finish(mut self) -> Transition {
        if self.changed || !self.events.is_empty() {
            self.inst.revision += 1;
        }
        Transition { instance: self.inst, effects: self.effects, events: self.events }
    }

    // ----- evaluation -------------------------------------------------------------------

    fn env(&self) -> Env<'_> {
        Env::new(self.p, &self.inst, &self.params)
    }

    fn eval_bool(&self, e: &script::Expr) -> Result<bool, ExprFailure> {
        self.p.sandbox.eval_bool(e, &self.env(), self.now).map_err(|err| failure(e, err))
    }

    fn eval_json(&self, e: &script::Expr) -> Result<Value, ExprFailure> {
        self.p.sandbox.eval_json(e, &self.env(), self.now).map_err(|err| failure(e, err))
    }

    fn eval_value(&self, v: &ValueRule) -> Result<Value, ExprFailure> {
        match v {
            ValueRule::Literal(v) => Ok(v.clone()),
            ValueRule::Expr(e) => self.eval_json(e),
            ValueRule::Nested(base, exprs) => {
                let mut out = base.clone();
                for (pointer, e) in exprs {
                    let value = self.eval_json(e)?;
                    if let Some(slot) = out.pointer_mut(pointer) {
                        *slot = value;
                    }
                }
                Ok(out)
            }
        }
    }

    fn eval_map(&self, assigns: &[model::Assign]) -> Result<Map<String, Value>, ExprFailure> {
        let mut out = Map::new();
        for a in assigns {
            out.insert(a.name.clone(), self.eval_value(&a.value)?);
        }
        Ok(out)
    }

    fn eval_key(&self, key: Option<&script::Expr>) -> Result<Option<String>, ExprFailure> {
        let Some(e) = key else { return Ok(None) };
        Ok(match self.eval_json(e)? {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        })
    }

    /// The moment a timer or due time falls on, for a step entered at `base`.
    fn moment(&self, m: &Moment, base: Timestamp, due: Option<Timestamp>) -> Result<Timestamp, ExprFailure> {
        match m {
            Moment::After { duration, calendar } => {
                let d = match duration {
                    DurationRule::Fixed(d) => *d,
                    DurationRule::Expr(e) => {
                        self.p.sandbox.eval_duration(e, &self.env(), self.now).map_err(|err| failure(e, err))?
                    }
                };
                match calendar {
                    Some(cal) => cal
                        .add_working(base, d)
                        .map_err(|err| ExprFailure(format!("cannot count {d} of working time: {err}"))),
                    None => base.checked_add(d).map_err(|err| ExprFailure(format!("cannot add {d}: {err}"))),
                }
            }
            Moment::At { expr, calendar } => {
                let at =
                    self.p.sandbox.eval_timestamp(expr, &self.env(), self.now).map_err(|err| failure(expr, err))?;
                match calendar {
                    Some(cal) => cal.next_open(at).map_err(|err| ExprFailure(format!("{err}"))),
                    None => Ok(at),
                }
            }
            Moment::AtDue => due.ok_or_else(|| ExprFailure("the task has no due time".into())),
        }
    }

    // ----- the cascade ------------------------------------------------------------------

    fn drain(&mut self) {
        while let Some(tid) = self.queue.pop_front() {
            if self.inst.is_ended() {
                break;
            }
            if self.inst.token(tid).is_some() {
                self.enter(tid);
            }
        }
    }

    fn token_step(&self, tid: u64) -> Option<StepIdx> {
        self.inst.token(tid).map(|t| t.step)
    }

    fn set_wait(&mut self, tid: u64, wait: Wait) {
        if let Some(t) = self.inst.tokens.iter_mut().find(|t| t.id == tid) {
            t.wait = wait;
        }
    }

    /// Runs a token's step from its entry.
    fn enter(&mut self, tid: u64) {
        let Some(idx) = self.token_step(tid) else { return };
        self.changed = true;
        let step = self.p.step(idx);
        if self.budget == 0 {
            self.incident(
                tid,
                IncidentKind::Loop,
                format!(
                    "the flow passed through {STEP_BUDGET} steps without waiting for anything; a loop with no task, timer or message?"
                ),
                Resume::Enter,
            );
            return;
        }
        self.budget -= 1;
        let from = self.came_from.iter().position(|(t, _)| *t == tid).map(|i| self.came_from.swap_remove(i).1);
        self.events.push(Event::Entered {
            step: step.id.clone(),
            kind: step.kind.name().into(),
            from: from.map(|f| self.p.step(f).id.clone()),
        });
        match &step.kind {
            StepKind::Task { task, timers, .. } => match self.open_task(tid, idx, task, None) {
                Ok(task_id) => {
                    self.set_wait(tid, Wait::Task { task: task_id.clone() });
                    let due = self.inst.task(&task_id).and_then(|t| t.due_at);
                    self.arm_timers(tid, timers, due);
                }
                Err(ExprFailure(msg)) => self.incident(tid, IncidentKind::Expression, msg, Resume::Enter),
            },
            StepKind::Action { action, input, timers, .. } => match self.eval_map(input) {
                Ok(input) => {
                    let job = self.inst.next_id('j');
                    self.inst.jobs.push(Job {
                        id: job.clone(),
                        token: Some(tid),
                        action: action.clone(),
                        input: Value::Object(input),
                        attempt: 1,
                        origin: step.id.clone(),
                    });
                    self.invoke(&job);
                    self.set_wait(tid, Wait::Job { job });
                    self.arm_timers(tid, timers, None);
                }
                Err(ExprFailure(msg)) => self.incident(tid, IncidentKind::Expression, msg, Resume::Enter),
            },
            StepKind::Decision { branches, default } => {
                let mut guards = Vec::new();
                let mut chosen = None;
                for b in branches {
                    match self.eval_bool(&b.guard) {
                        Ok(v) => {
                            guards.push((b.guard.source().to_string(), v));
                            if v {
                                chosen = Some(b.next);
                                break;
                            }
                        }
                        Err(ExprFailure(msg)) => {
                            self.incident(tid, IncidentKind::Expression, msg, Resume::Enter);
                            return;
                        }
                    }
                }
                let to = chosen.unwrap_or(*default);
                self.events.push(Event::Decided {
                    step: step.id.clone(),
                    guards,
                    to: self.p.step(to).id.clone(),
                    default: chosen.is_none(),
                });
                self.advance(tid, to);
            }
            StepKind::Parallel { branches, join } => {
                let outer = self.inst.token(tid).and_then(|t| t.fork);
                let join_id = self.inst.next_token_id();
                self.inst.joins.push(JoinState { id: join_id, split: idx, join: *join, arrived: Vec::new(), outer });
                self.remove_token(tid);
                self.events.push(Event::Forked {
                    step: step.id.clone(),
                    branches: branches.iter().map(|b| self.p.step(*b).id.clone()).collect(),
                });
                for (i, b) in branches.iter().enumerate() {
                    let new = self.inst.next_token_id();
                    self.inst.tokens.push(Token {
                        id: new,
                        step: *b,
                        entered_at: self.now,
                        fork: Some(Fork { join: join_id, branch: i }),
                        wait: Wait::Join { join: join_id },
                    });
                    self.queue.push_back(new);
                }
            }
            StepKind::Join { .. } => self.arrive(tid, idx),
            StepKind::Wait { until, .. } => match self.moment(until, self.now, None) {
                Ok(at) => {
                    let timer = self.arm(tid, at, TimerKind::Wait, "wait");
                    self.set_wait(tid, Wait::Timer { timer });
                }
                Err(ExprFailure(msg)) => self.incident(tid, IncidentKind::Expression, msg, Resume::Enter),
            },
            StepKind::Receive { message, key, timers, .. } => match self.eval_key(key.as_ref()) {
                Ok(key) => {
                    self.effects.push(Effect::Subscribe { name: message.clone(), key: key.clone() });
                    self.events.push(Event::Awaiting { name: message.clone(), key: key.clone() });
                    self.set_wait(tid, Wait::Message { name: message.clone(), key });
                    self.arm_timers(tid, timers, None);
                }
                Err(ExprFailure(msg)) => self.incident(tid, IncidentKind::Expression, msg, Resume::Enter),
            },
            StepKind::Send { message, key, payload, next } => {
                let evaluated = self.eval_key(key.as_ref()).and_then(|k| Ok((k, self.eval_map(payload)?)));
                match evaluated {
                    Ok((key, payload)) => {
                        self.events.push(Event::Sent { name: message.clone(), key: key.clone() });
                        self.effects.push(Effect::SendMessage {
                            name: message.clone(),
                            key,
                            payload: Value::Object(payload),
                        });
                        self.advance(tid, *next);
                    }
                    Err(ExprFailure(msg)) => self.incident(tid, IncidentKind::Expression, msg, Resume::Enter),
                }
            }
            StepKind::Subprocess { process, input, business_key, wait, timers, .. } => {
                let evaluated = self.eval_map(input).and_then(|d| Ok((d, self.eval_key(business_key.as_ref())?)));
                match evaluated {
                    Ok((data, business_key)) => {
                        let child = self.inst.next_id('c');
                        self.inst.children.push(ChildLink {
                            instance: child.clone(),
                            process: process.clone(),
                            step: step.id.clone(),
                            outcome: None,
                        });
                        self.events.push(Event::ChildStarted { child: child.clone(), process: process.clone() });
                        self.effects.push(Effect::StartInstance {
                            id: child.clone(),
                            process: process.clone(),
                            data,
                            business_key: business_key.or_else(|| self.inst.business_key.clone()),
                            parent: ParentLink { instance: self.inst.id.clone(), step: step.id.clone() },
                        });
                        if *wait {
                            self.set_wait(tid, Wait::Child { child });
                            self.arm_timers(tid, timers, None);
                        } else {
                            // Not waiting: the output mapping runs now, with the link recorded.
                            self.exit(tid);
                        }
                    }
                    Err(ExprFailure(msg)) => self.incident(tid, IncidentKind::Expression, msg, Resume::Enter),
                }
            }
            StepKind::End { outcome, result } => match self.eval_map(result) {
                Ok(result) => self.end(outcome, Some(step.id.clone()), Value::Object(result)),
                Err(ExprFailure(msg)) => self.incident(tid, IncidentKind::Expression, msg, Resume::Enter),
            },
        }
    }

    /// Applies a step's output mapping and moves its token to the step's `next`.
    fn exit(&mut self, tid: u64) {
        let Some(idx) = self.token_step(tid) else { return };
        let step = self.p.step(idx);
        let (set, next): (&[model::Assign], StepIdx) = match &step.kind {
            StepKind::Task { set, next, .. }
            | StepKind::Action { set, next, .. }
            | StepKind::Join { set, next, .. }
            | StepKind::Wait { set, next, .. }
            | StepKind::Receive { set, next, .. }
            | StepKind::Subprocess { set, next, .. } => (set, *next),
            StepKind::Send { next, .. } => (&[], *next),
            StepKind::Decision { default, .. } => (&[], *default),
            StepKind::Parallel { .. } | StepKind::End { .. } => return,
        };
        if let Err(msg) = self.apply_set(set) {
            self.incident(tid, msg.0, msg.1, Resume::Exit);
            return;
        }
        self.advance(tid, next);
    }

    /// Evaluates assignments one by one (each sees the ones before) and checks the result
    /// against the data schema.
    fn apply_set(&mut self, set: &[model::Assign]) -> Result<(), (IncidentKind, String)> {
        if set.is_empty() {
            return Ok(());
        }
        for a in set {
            let value = self.eval_value(&a.value).map_err(|ExprFailure(m)| (IncidentKind::Expression, m))?;
            self.inst.data.insert(a.name.clone(), value.clone());
            self.events.push(Event::Set { name: a.name.clone(), value });
        }
        let errors = check_data(self.p, &self.inst.data, false);
        if !errors.is_empty() {
            let list: Vec<String> = errors.iter().map(|e| format!("{} {}", e.path, e.message)).collect();
            return Err((IncidentKind::Data, format!("the data no longer fits its schema: {}", list.join("; "))));
        }
        Ok(())
    }

    /// Moves a token to another step: what it waited for at the old step is cancelled.
    fn advance(&mut self, tid: u64, to: StepIdx) {
        self.leave(tid);
        if let Some(from) = self.token_step(tid) {
            self.came_from.retain(|(t, _)| *t != tid);
            self.came_from.push((tid, from));
        }
        if let Some(t) = self.inst.tokens.iter_mut().find(|t| t.id == tid) {
            t.step = to;
            t.entered_at = self.now;
            t.wait = Wait::Entering;
        }
        self.queue.push_back(tid);
    }

    /// Cancels whatever a token's current step has open: tasks (also side tasks), timers,
    /// jobs, a message subscription.
    fn leave(&mut self, tid: u64) {
        let tasks: Vec<Task> = self.inst.tasks.iter().filter(|t| t.token == tid).cloned().collect();
        for t in tasks {
            self.inst.tasks.retain(|x| x.id != t.id);
            self.effects.push(Effect::TaskClosed { task: t.id.clone(), completed: false });
            self.events.push(Event::TaskCancelled { task: t.id, step: t.step });
        }
        let timers: Vec<String> =
            self.inst.timers.iter().filter(|t| t.token == Some(tid)).map(|t| t.id.clone()).collect();
        for id in timers {
            self.inst.timers.retain(|t| t.id != id);
            self.effects.push(Effect::TimerCancelled { timer: id });
        }
        self.inst.jobs.retain(|j| j.token != Some(tid));
        let incidents: Vec<String> =
            self.inst.incidents.iter().filter(|i| i.token == Some(tid)).map(|i| i.id.clone()).collect();
        self.inst.incidents.retain(|i| !incidents.contains(&i.id));
        if let Some(Token { wait: Wait::Message { name, key }, .. }) = self.inst.token(tid).cloned() {
            self.effects.push(Effect::Unsubscribe { name, key });
        }
    }

    fn remove_token(&mut self, tid: u64) {
        self.leave(tid);
        self.inst.tokens.retain(|t| t.id != tid);
    }

    fn incident(&mut self, tid: u64, kind: IncidentKind, message: String, resume: Resume) {
        let step = self.token_step(tid).map(|i| self.p.step(i).id.clone()).unwrap_or_default();
        let id = self.inst.next_id('x');
        self.inst.incidents.push(Incident {
            id: id.clone(),
            step: step.clone(),
            token: Some(tid),
            kind,
            message: message.clone(),
            at: self.now,
            resume,
        });
        self.set_wait(tid, Wait::Incident { incident: id.clone() });
        self.events.push(Event::IncidentRaised { incident: id, step, message });
    }

    fn end(&mut self, outcome: &str, step: Option<String>, result: Value) {
        let tokens: Vec<u64> = self.inst.tokens.iter().map(|t| t.id).collect();
        for tid in tokens {
            self.remove_token(tid);
        }
        // Timers and jobs without a token (notifications) die with the instance.
        for t in std::mem::take(&mut self.inst.timers) {
            self.effects.push(Effect::TimerCancelled { timer: t.id });
        }
        for t in std::mem::take(&mut self.inst.tasks) {
            self.effects.push(Effect::TaskClosed { task: t.id.clone(), completed: false });
            self.events.push(Event::TaskCancelled { task: t.id, step: t.step });
        }
        self.inst.jobs.clear();
        self.inst.joins.clear();
        self.events.push(Event::Ended { outcome: outcome.into(), step });
        self.inst.status = Status::Ended { outcome: outcome.into(), at: self.now };
        if let Some(parent) = &self.inst.parent {
            self.effects.push(Effect::NotifyParent {
                parent: parent.instance.clone(),
                child: self.inst.id.clone(),
                outcome: outcome.into(),
                result,
            });
        }
        self.queue.clear();
    }

    // ----- tasks ------------------------------------------------------------------------

    /// Opens a task for a token; `side` names the timer for a side task.
    fn open_task(&mut self, tid: u64, idx: StepIdx, def: &TaskDef, side: Option<&str>) -> Result<String, ExprFailure> {
        let assignee = match &def.assignee {
            None => None,
            Some(e) => match self.eval_json(e)? {
                Value::Null => None,
                Value::String(s) if s.is_empty() => None,
                Value::String(s) => Some(s),
                other => return Err(ExprFailure(format!("the assignee must be a user id (text), not {other}"))),
            },
        };
        let priority = match &def.priority {
            PriorityRule::Fixed(p) => *p,
            PriorityRule::Expr(e) => {
                let word = self.eval_json(e)?;
                word.as_str().and_then(Priority::parse).ok_or_else(|| {
                    ExprFailure(format!("the priority must be low, normal, high or urgent, not {word}"))
                })?
            }
        };
        let due_at = match &def.due {
            Some(m) => Some(self.moment(m, self.now, None)?),
            None => None,
        };
        let id = self.inst.next_id('t');
        let step_id = side.map_or_else(|| self.p.step(idx).id.clone(), str::to_string);
        let task = Task {
            id: id.clone(),
            step: step_id.clone(),
            token: tid,
            timer: side.map(str::to_string),
            title: def.title.clone(),
            roles: def.roles.clone(),
            assignee: assignee.clone(),
            priority,
            due_at,
            created_at: self.now,
            form: def.form.as_ref().and_then(|f| f.name.clone()),
        };
        self.events.push(Event::TaskOpened {
            task: id.clone(),
            step: step_id,
            title: def.title.clone(),
            roles: def.roles.clone(),
            assignee,
            priority,
            due_at,
        });
        self.effects.push(Effect::TaskOpened { task: task.clone() });
        self.inst.tasks.push(task);
        if let Some(due) = due_at {
            self.arm(tid, due, TimerKind::Due { task: id.clone() }, "due");
        }
        Ok(id)
    }

    fn task_for(&self, task: &str) -> Result<Task, Rejection> {
        self.inst.task(task).cloned().ok_or_else(|| Rejection::NoSuchTask(task.into()))
    }

    fn actor(user: &User, task: &Task) -> Actor {
        Actor::User { id: user.id.clone(), role: user.role_among(&task.roles).map(str::to_string) }
    }

    /// May `user` act on `task` now (claim or complete)?
    fn may_act(user: &User, task: &Task) -> Result<(), Rejection> {
        match &task.assignee {
            Some(a) if a == &user.id => Ok(()),
            Some(a) => Err(Rejection::ClaimedByOther { task: task.id.clone(), assignee: a.clone() }),
            None if user.role_among(&task.roles).is_some() => Ok(()),
            None => Err(Rejection::NotCandidate { task: task.id.clone(), roles: task.roles.clone() }),
        }
    }

    fn update_task(&mut self, task: Task) {
        if let Some(t) = self.inst.tasks.iter_mut().find(|t| t.id == task.id) {
            *t = task.clone();
        }
        self.effects.push(Effect::TaskChanged { task });
        self.changed = true;
    }

    fn claim(&mut self, task: &str, by: &User) -> Result<(), Rejection> {
        let mut t = self.task_for(task)?;
        if t.assignee.as_deref() == Some(by.id.as_str()) {
            return Ok(()); // Claiming one's own task again changes nothing.
        }
        Self::may_act(by, &t)?;
        t.assignee = Some(by.id.clone());
        self.events.push(Event::TaskClaimed { task: t.id.clone(), by: Self::actor(by, &t) });
        self.update_task(t);
        Ok(())
    }

    fn unclaim(&mut self, task: &str, by: &User) -> Result<(), Rejection> {
        let mut t = self.task_for(task)?;
        match &t.assignee {
            None => return Ok(()),
            Some(a) if a != &by.id => return Err(Rejection::NotAssignee(task.into())),
            Some(_) => {}
        }
        t.assignee = None;
        self.events.push(Event::TaskUnclaimed { task: t.id.clone(), by: Self::actor(by, &t) });
        self.update_task(t);
        Ok(())
    }

    fn delegate(&mut self, task: &str, by: &User, to: &User) -> Result<(), Rejection> {
        let mut t = self.task_for(task)?;
        Self::may_act(by, &t)?;
        if to.role_among(&t.roles).is_none() {
            return Err(Rejection::DelegateLacksRole { to: to.id.clone(), roles: t.roles.clone() });
        }
        t.assignee = Some(to.id.clone());
        self.events.push(Event::TaskDelegated { task: t.id.clone(), by: Self::actor(by, &t), to: to.id.clone() });
        self.update_task(t);
        Ok(())
    }

    fn complete(&mut self, task: &str, by: &User, form: &Value) -> Result<(), Rejection> {
        let t = self.task_for(task)?;
        Self::may_act(by, &t)?;
        let def = self.task_def(&t);
        let form = match (def.and_then(|d| d.form.as_ref()), form) {
            (Some(f), value) => {
                let errors = schema_errors(&f.validator, value);
                if !errors.is_empty() {
                    return Err(Rejection::InvalidForm(errors));
                }
                value.clone()
            }
            (None, Value::Null) => Value::Object(Map::new()),
            (None, Value::Object(m)) if m.is_empty() => Value::Object(Map::new()),
            (None, _) => {
                return Err(Rejection::InvalidForm(vec![FieldError {
                    path: "/".into(),
                    message: "this task has no form; send no data".into(),
                }]));
            }
        };
        self.changed = true;
        self.inst.tasks.retain(|x| x.id != t.id);
        self.effects.push(Effect::TaskClosed { task: t.id.clone(), completed: true });
        // Its due timer goes with it.
        let due_timers: Vec<String> = self
            .inst
            .timers
            .iter()
            .filter(|x| matches!(&x.kind, TimerKind::Due { task } if task == &t.id))
            .map(|x| x.id.clone())
            .collect();
        for id in due_timers {
            self.inst.timers.retain(|x| x.id != id);
            self.effects.push(Effect::TimerCancelled { timer: id });
        }
        self.events.push(Event::TaskCompleted {
            task: t.id.clone(),
            step: t.step.clone(),
            by: Self::actor(by, &t),
            form: form.clone(),
            due_at: t.due_at,
            created_at: t.created_at,
        });
        self.inst.data.insert(t.step.clone(), form);
        self.inst.done_by.insert(t.step.clone(), by.id.clone());
        match &t.timer {
            // A side task: record its form and mapping; the token stays where it is.
            Some(def_id) => {
                if let Some((_, timer)) = self.p.timer(def_id)
                    && let Some((_, set)) = &timer.open_task
                    && let Err((kind, msg)) = self.apply_set(set)
                {
                    self.incident(t.token, kind, msg, Resume::Nothing);
                }
            }
            None => self.exit(t.token),
        }
        Ok(())
    }

    fn task_def(&self, t: &Task) -> Option<&'p TaskDef> {
        match &t.timer {
            Some(def) => self.p.timer(def).and_then(|(_, timer)| timer.open_task.as_ref().map(|(d, _)| d)),
            None => match &self.p.step(self.p.step_idx(&t.step)?).kind {
                StepKind::Task { task, .. } => Some(task),
                _ => None,
            },
        }
    }

    // ----- timers -----------------------------------------------------------------------

    fn arm(&mut self, tid: u64, at: Timestamp, kind: TimerKind, def: &str) -> String {
        let id = self.inst.next_id('k');
        let timer = Timer { id: id.clone(), fire_at: at, token: Some(tid), kind };
        self.events.push(Event::TimerArmed { timer: id.clone(), def: def.into(), fire_at: at });
        self.effects.push(Effect::TimerSet { timer: timer.clone() });
        self.inst.timers.push(timer);
        id
    }

    fn arm_timers(&mut self, tid: u64, timers: &[TimerDef], due: Option<Timestamp>) {
        for def in timers {
            if let Some(g) = &def.when {
                match self.eval_bool(g) {
                    Ok(true) => {}
                    Ok(false) => {
                        self.events.push(Event::TimerSkipped { def: def.id.clone(), guard: g.source().into() });
                        continue;
                    }
                    Err(ExprFailure(msg)) => {
                        self.incident(tid, IncidentKind::Expression, msg, Resume::Enter);
                        return;
                    }
                }
            }
            match self.moment(&def.first, self.now, due) {
                Ok(at) => {
                    self.arm(tid, at, TimerKind::Step { def: def.id.clone(), fired: 0 }, &def.id);
                }
                Err(ExprFailure(msg)) => {
                    self.incident(tid, IncidentKind::Expression, format!("timer `{}`: {msg}", def.id), Resume::Enter);
                    return;
                }
            }
        }
    }

    fn timer_fired(&mut self, id: &str) -> Result<(), Rejection> {
        let Some(timer) = self.inst.timers.iter().find(|t| t.id == id).cloned() else {
            return Err(Rejection::Stale(id.into()));
        };
        self.changed = true;
        self.inst.timers.retain(|t| t.id != id);
        self.effects.push(Effect::TimerCancelled { timer: id.into() });
        let late_secs = (self.now - timer.fire_at).get_seconds().max(0);
        let def_name = match &timer.kind {
            TimerKind::Step { def, .. } => def.clone(),
            TimerKind::Wait => "wait".into(),
            TimerKind::Retry { .. } => "retry".into(),
            TimerKind::Due { .. } => "due".into(),
        };
        self.events.push(Event::TimerFired { timer: id.into(), def: def_name, late_secs });
        match timer.kind.clone() {
            TimerKind::Due { task } => {
                if let Some(t) = self.inst.task(&task).cloned()
                    && let Some(due_at) = t.due_at
                {
                    self.events.push(Event::SlaBreached { task: t.id, step: t.step, due_at });
                }
            }
            TimerKind::Wait => {
                if let Some(tid) = timer.token {
                    self.exit(tid);
                }
            }
            TimerKind::Retry { job } => self.invoke_again(&job),
            TimerKind::Step { def, fired } => self.step_timer(&timer, &def, fired),
        }
        Ok(())
    }

    fn step_timer(&mut self, timer: &Timer, def_id: &str, fired: u32) {
        let Some(tid) = timer.token else { return };
        let Some((idx, def)) = self.p.timer(def_id) else { return };
        if self.token_step(tid) != Some(idx) {
            return;
        }
        let active = match &def.when {
            None => true,
            Some(g) => match self.eval_bool(g) {
                Ok(v) => v,
                Err(ExprFailure(msg)) => {
                    self.incident_side(tid, format!("timer `{def_id}`: {msg}"));
                    false
                }
            },
        };
        let fired = fired + 1;
        // A recurring timer is re-armed first, so that a `goto` below cancels it with the step.
        if let Some((period, cal)) = &def.every
            && def.max_times.is_none_or(|max| fired < max)
        {
            let from = if timer.fire_at > self.now { timer.fire_at } else { self.now };
            let next = match cal {
                Some(c) => c.add_working(from, *period).ok(),
                None => from.checked_add(*period).ok(),
            };
            if let Some(next) = next {
                self.arm(tid, next, TimerKind::Step { def: def_id.into(), fired }, def_id);
            }
        }
        if !active {
            if let Some(g) = &def.when {
                self.events.push(Event::TimerSkipped { def: def_id.into(), guard: g.source().into() });
            }
            return;
        }
        if let Err((_, msg)) = self.apply_set(&def.set) {
            self.incident_side(tid, format!("timer `{def_id}`: {msg}"));
        }
        if let Some(input) = &def.notify {
            self.fire_and_forget(tid, "notify", input, def_id);
        }
        if let Some((action, input)) = &def.invoke {
            self.fire_and_forget(tid, action, input, def_id);
        }
        if let Some(esc) = &def.escalate {
            self.escalate(tid, esc, def_id);
        }
        if let Some((task, _)) = &def.open_task
            && let Err(ExprFailure(msg)) = self.open_task(tid, idx, task, Some(def_id))
        {
            self.incident_side(tid, format!("timer `{def_id}`: {msg}"));
        }
        if let Some(to) = def.goto {
            self.advance(tid, to);
        }
    }

    /// An incident that does not hold up the token (a timer's side effect failed).
    fn incident_side(&mut self, tid: u64, message: String) {
        let step = self.token_step(tid).map(|i| self.p.step(i).id.clone()).unwrap_or_default();
        let id = self.inst.next_id('x');
        self.inst.incidents.push(Incident {
            id: id.clone(),
            step: step.clone(),
            token: None,
            kind: IncidentKind::Expression,
            message: message.clone(),
            at: self.now,
            resume: Resume::Nothing,
        });
        self.events.push(Event::IncidentRaised { incident: id, step, message });
    }

    fn escalate(&mut self, tid: u64, esc: &model::EscalateDef, def_id: &str) {
        let assignee = match &esc.assignee {
            None => None,
            Some(AssigneeRule::Nobody) => Some(None),
            Some(AssigneeRule::Expr(e)) => match self.eval_json(e) {
                Ok(Value::String(s)) if !s.is_empty() => Some(Some(s)),
                Ok(Value::Null) => Some(None),
                Ok(other) => {
                    self.incident_side(tid, format!("timer `{def_id}`: the assignee must be a user id, not {other}"));
                    return;
                }
                Err(ExprFailure(msg)) => {
                    self.incident_side(tid, format!("timer `{def_id}`: {msg}"));
                    return;
                }
            },
        };
        let tasks: Vec<Task> =
            self.inst.tasks.iter().filter(|t| t.token == tid && t.timer.is_none()).cloned().collect();
        for mut t in tasks {
            for r in &esc.add_roles {
                if !t.roles.contains(r) {
                    t.roles.push(r.clone());
                }
            }
            if let Some(a) = &assignee {
                t.assignee = a.clone();
            }
            if let Some(p) = esc.priority {
                t.priority = p;
            }
            self.events.push(Event::TaskEscalated {
                task: t.id.clone(),
                add_roles: esc.add_roles.clone(),
                assignee: assignee.clone().map(Option::unwrap_or_default),
                priority: esc.priority,
            });
            self.update_task(t);
        }
    }

    // ----- actions ----------------------------------------------------------------------

    fn fire_and_forget(&mut self, tid: u64, action: &str, input: &[model::Assign], origin: &str) {
        match self.eval_map(input) {
            Ok(input) => {
                let job = self.inst.next_id('j');
                self.inst.jobs.push(Job {
                    id: job.clone(),
                    token: None,
                    action: action.into(),
                    input: Value::Object(input),
                    attempt: 1,
                    origin: origin.into(),
                });
                self.invoke(&job);
            }
            Err(ExprFailure(msg)) => self.incident_side(tid, format!("timer `{origin}`: {msg}")),
        }
    }

    fn invoke(&mut self, job_id: &str) {
        let Some(job) = self.inst.jobs.iter().find(|j| j.id == job_id).cloned() else { return };
        self.events.push(Event::ActionInvoked {
            job: job.id.clone(),
            action: job.action.clone(),
            attempt: job.attempt,
            input: job.input.clone(),
        });
        self.effects.push(Effect::Invoke {
            idempotency_key: format!("{}#{}", job.id, job.attempt),
            job: job.id,
            action: job.action,
            input: job.input,
            attempt: job.attempt,
        });
    }

    fn invoke_again(&mut self, job_id: &str) {
        if let Some(j) = self.inst.jobs.iter_mut().find(|j| j.id == job_id) {
            j.attempt += 1;
            self.invoke(job_id);
        }
    }

    fn retry_policy(&self, job: &Job) -> model::RetryPolicy {
        job.token
            .and_then(|tid| self.token_step(tid))
            .and_then(|idx| match &self.p.step(idx).kind {
                StepKind::Action { retry, .. } => Some(*retry),
                _ => None,
            })
            .unwrap_or_default()
    }

    fn action_succeeded(&mut self, job_id: &str, output: &Value) -> Result<(), Rejection> {
        let Some(job) = self.inst.jobs.iter().find(|j| j.id == job_id).cloned() else {
            return Err(Rejection::Stale(job_id.into()));
        };
        self.changed = true;
        self.inst.jobs.retain(|j| j.id != job_id);
        self.events.push(Event::ActionSucceeded {
            job: job.id.clone(),
            action: job.action.clone(),
            output: output.clone(),
        });
        // An answer that arrives after the last try was given up (a slow success) settles the
        // incident it caused: the action did happen.
        let settled: Vec<String> = self
            .inst
            .incidents
            .iter()
            .filter(|i| matches!(&i.resume, Resume::Job { job } if job == job_id))
            .map(|i| i.id.clone())
            .collect();
        for id in settled {
            self.inst.incidents.retain(|i| i.id != id);
            self.events.push(Event::IncidentResolved {
                incident: id,
                how: "settled by a late answer".into(),
                by: Actor::Action { name: job.action.clone() },
            });
        }
        if let Some(tid) = job.token {
            self.inst.data.insert(job.origin.clone(), output.clone());
            self.exit(tid);
        }
        Ok(())
    }

    fn action_failed(&mut self, job_id: &str, error: &str, retryable: bool) -> Result<(), Rejection> {
        let Some(job) = self.inst.jobs.iter().find(|j| j.id == job_id).cloned() else {
            return Err(Rejection::Stale(job_id.into()));
        };
        self.changed = true;
        let policy = self.retry_policy(&job);
        if retryable && job.attempt < policy.max_attempts {
            let at = self.now.checked_add(policy.delay_after(job.attempt)).unwrap_or(self.now);
            self.events.push(Event::ActionFailed {
                job: job.id.clone(),
                action: job.action.clone(),
                error: error.into(),
                retry_at: Some(at),
            });
            let timer = self.inst.next_id('k');
            let t = Timer {
                id: timer.clone(),
                fire_at: at,
                token: job.token,
                kind: TimerKind::Retry { job: job.id.clone() },
            };
            self.events.push(Event::TimerArmed { timer, def: "retry".into(), fire_at: at });
            self.effects.push(Effect::TimerSet { timer: t.clone() });
            self.inst.timers.push(t);
            return Ok(());
        }
        self.events.push(Event::ActionFailed {
            job: job.id.clone(),
            action: job.action.clone(),
            error: error.into(),
            retry_at: None,
        });
        let message = format!("the action `{}` failed after {} tries: {error}", job.action, job.attempt);
        match job.token {
            Some(tid) => {
                let on_failure = self.token_step(tid).and_then(|idx| match &self.p.step(idx).kind {
                    StepKind::Action { on_failure, .. } => *on_failure,
                    _ => None,
                });
                match on_failure {
                    Some(to) => {
                        self.inst.jobs.retain(|j| j.id != job_id);
                        self.inst.data.insert(job.origin.clone(), serde_json::json!({ "error": error }));
                        self.advance(tid, to);
                    }
                    None => self.incident(tid, IncidentKind::Action, message, Resume::Job { job: job.id }),
                }
            }
            None => {
                // A failed notification does not hold up the flow, but an administrator sees it.
                let id = self.inst.next_id('x');
                self.inst.incidents.push(Incident {
                    id: id.clone(),
                    step: job.origin.clone(),
                    token: None,
                    kind: IncidentKind::Action,
                    message: message.clone(),
                    at: self.now,
                    resume: Resume::Job { job: job.id },
                });
                self.events.push(Event::IncidentRaised { incident: id, step: job.origin, message });
            }
        }
        Ok(())
    }

    // ----- messages and children --------------------------------------------------------

    fn message(&mut self, name: &str, key: Option<&str>, payload: &Value) -> Result<(), Rejection> {
        let waiting: Vec<u64> = self
            .inst
            .tokens
            .iter()
            .filter(|t| match &t.wait {
                Wait::Message { name: n, key: k } => n == name && (k.is_none() || k.as_deref() == key),
                _ => false,
            })
            .map(|t| t.id)
            .collect();
        if waiting.is_empty() {
            return Err(Rejection::NotWaiting(name.into()));
        }
        self.events.push(Event::Received { name: name.into(), key: key.map(str::to_string), payload: payload.clone() });
        for tid in waiting {
            if let Some(idx) = self.token_step(tid) {
                self.inst.data.insert(self.p.step(idx).id.clone(), payload.clone());
            }
            self.exit(tid);
        }
        Ok(())
    }

    fn child_ended(&mut self, child: &str, outcome: &str, result: &Value) -> Result<(), Rejection> {
        let Some(link) = self.inst.children.iter_mut().find(|c| c.instance == child) else {
            return Err(Rejection::Stale(child.into()));
        };
        link.outcome = Some(outcome.into());
        self.changed = true;
        self.events.push(Event::ChildEnded { child: child.into(), outcome: outcome.into() });
        let waiting: Vec<u64> = self
            .inst
            .tokens
            .iter()
            .filter(|t| matches!(&t.wait, Wait::Child { child: c } if c == child))
            .map(|t| t.id)
            .collect();
        for tid in waiting {
            let mut out = match result {
                Value::Object(m) => m.clone(),
                Value::Null => Map::new(),
                other => {
                    let mut m = Map::new();
                    m.insert("result".into(), other.clone());
                    m
                }
            };
            out.insert("outcome".into(), Value::String(outcome.into()));
            if let Some(idx) = self.token_step(tid) {
                self.inst.data.insert(self.p.step(idx).id.clone(), Value::Object(out));
            }
            self.exit(tid);
        }
        Ok(())
    }

    // ----- joins ------------------------------------------------------------------------

    fn arrive(&mut self, tid: u64, idx: StepIdx) {
        let StepKind::Join { of, wait_for, abort_when, on_abort, .. } = &self.p.step(idx).kind else { return };
        let fork = self.inst.token(tid).and_then(|t| t.fork);
        let state = fork.and_then(|f| self.inst.joins.iter().find(|j| j.id == f.join).cloned());
        let (Some(fork), Some(state)) = (fork, state) else {
            self.incident(
                tid,
                IncidentKind::Flow,
                format!("the flow reached the join `{}` outside the branches of its split", self.p.step(idx).id),
                Resume::Enter,
            );
            return;
        };
        if state.split != *of || state.join != idx {
            self.incident(
                tid,
                IncidentKind::Flow,
                format!("the flow reached the join `{}` from the branches of another split", self.p.step(idx).id),
                Resume::Enter,
            );
            return;
        }
        let n_branches = match &self.p.step(state.split).kind {
            StepKind::Parallel { branches, .. } => branches.len(),
            _ => 0,
        };
        let needed = wait_for.map_or(n_branches, |n| n as usize);
        let arrived = {
            let js = self.inst.joins.iter_mut().find(|j| j.id == state.id);
            match js {
                Some(js) => {
                    if !js.arrived.contains(&fork.branch) {
                        js.arrived.push(fork.branch);
                    }
                    js.arrived.len()
                }
                None => 0,
            }
        };
        self.set_wait(tid, Wait::Join { join: state.id });
        let join_id = self.p.step(idx).id.clone();
        self.events.push(Event::Arrived { step: join_id.clone(), branch: fork.branch, arrived, needed });
        let mut guard = None;
        if let Some(g) = abort_when {
            match self.eval_bool(g) {
                Ok(v) => guard = Some((g.source().to_string(), v)),
                Err(ExprFailure(msg)) => {
                    self.incident(tid, IncidentKind::Expression, msg, Resume::Enter);
                    return;
                }
            }
        }
        let aborted = guard.as_ref().is_some_and(|(_, v)| *v);
        if !aborted && arrived < needed {
            return;
        }
        // The join completes: the other branches (still running, or waiting here) are
        // cancelled, and this token carries on outside the split.
        self.cancel_branches(state.id, tid);
        if let Some(t) = self.inst.tokens.iter_mut().find(|t| t.id == tid) {
            t.fork = state.outer;
        }
        let to = if aborted { on_abort.unwrap_or(idx) } else { idx };
        if aborted {
            self.events.push(Event::Joined { step: join_id, aborted: true, guard, to: self.p.step(to).id.clone() });
            self.advance(tid, to);
        } else {
            let next = match &self.p.step(idx).kind {
                StepKind::Join { next, .. } => *next,
                _ => idx,
            };
            self.events.push(Event::Joined { step: join_id, aborted: false, guard, to: self.p.step(next).id.clone() });
            self.exit(tid);
        }
    }

    /// Removes every token of a split (and of splits nested in it) except `keep`.
    fn cancel_branches(&mut self, join: u64, keep: u64) {
        let mut states: BTreeSet<u64> = BTreeSet::from([join]);
        loop {
            let before = states.len();
            for js in &self.inst.joins {
                if js.outer.is_some_and(|o| states.contains(&o.join)) {
                    states.insert(js.id);
                }
            }
            if states.len() == before {
                break;
            }
        }
        let doomed: Vec<u64> = self
            .inst
            .tokens
            .iter()
            .filter(|t| t.id != keep && t.fork.is_some_and(|f| states.contains(&f.join)))
            .map(|t| t.id)
            .collect();
        for tid in doomed {
            self.remove_token(tid);
        }
        self.inst.joins.retain(|j| !states.contains(&j.id));
    }

    // ----- administration ---------------------------------------------------------------

    fn resolve_incident(&mut self, id: &str, by: &User, retry: bool) -> Result<(), Rejection> {
        let Some(incident) = self.inst.incidents.iter().find(|i| i.id == id).cloned() else {
            return Err(Rejection::NoSuchIncident(id.into()));
        };
        self.changed = true;
        self.inst.incidents.retain(|i| i.id != id);
        self.events.push(Event::IncidentResolved {
            incident: id.into(),
            how: if retry { "retried" } else { "skipped" }.into(),
            by: Actor::User { id: by.id.clone(), role: None },
        });
        if retry {
            match incident.resume {
                Resume::Enter => {
                    if let Some(tid) = incident.token {
                        self.queue.push_back(tid);
                    }
                }
                Resume::Exit => {
                    if let Some(tid) = incident.token {
                        self.exit(tid);
                    }
                }
                Resume::Job { job } => {
                    if let Some(tid) = incident.token {
                        self.set_wait(tid, Wait::Job { job: job.clone() });
                    }
                    self.invoke_again(&job);
                }
                Resume::Nothing => {}
            }
            return Ok(());
        }
        if let Resume::Job { job } = &incident.resume {
            self.inst.jobs.retain(|j| &j.id != job);
        }
        if let Some(tid) = incident.token
            && let Some(idx) = self.token_step(tid)
        {
            // Skipping moves the token past the failed step without its output mapping.
            let next = match &self.p.step(idx).kind {
                StepKind::Task { next, .. }
                | StepKind::Action { next, .. }
                | StepKind::Join { next, .. }
                | StepKind::Wait { next, .. }
                | StepKind::Receive { next, .. }
                | StepKind::Send { next, .. }
                | StepKind::Subprocess { next, .. } => Some(*next),
                StepKind::Decision { default, .. } => Some(*default),
                StepKind::Parallel { .. } | StepKind::End { .. } => None,
            };
            match next {
                Some(to) => self.advance(tid, to),
                None => self.queue.push_back(tid),
            }
        }
        Ok(())
    }

    fn cancel(&mut self, by: &Actor, reason: &str) {
        let waited: Vec<String> = self
            .inst
            .tokens
            .iter()
            .filter_map(|t| match &t.wait {
                Wait::Child { child } => Some(child.clone()),
                _ => None,
            })
            .collect();
        for child in waited {
            self.effects.push(Effect::CancelChild { child });
        }
        self.events.push(Event::Cancelled { by: by.clone(), reason: reason.into() });
        self.end("cancelled", None, serde_json::json!({ "reason": reason }));
    }
}

fn failure(e: &script::Expr, err: script::EvalError) -> ExprFailure {
    ExprFailure(format!("`{}`: {err}", e.source().trim()))
}
