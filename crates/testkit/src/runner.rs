//! Running one scenario in a [`World`]: perform each step, check each expectation, and render
//! the trace that is compared with the scenario's snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use machine::{Actor, Event, Input, Rejection, User};
use model::Process;
use serde_json::Value;

use crate::scenario::{Expect, Scenario, ScenarioStep};
use crate::world::{Reply, World};

/// The result of running a scenario.
#[derive(Debug)]
pub struct Run {
    /// The first failure, with the step it happened at; `None` if the scenario passed.
    pub failure: Option<String>,
    /// The readable trace.
    pub trace: String,
    /// The world afterwards (for coverage and further inspection).
    pub world: World,
}

/// The id every scenario's own instance gets.
pub const MAIN: &str = "i1";

/// Runs a scenario against the processes of a pack.
pub fn run(scenario: &Scenario, processes: &[Arc<Process>]) -> Run {
    let start_at = match scenario.start_at.parse::<jiff::Zoned>() {
        Ok(z) => z.timestamp(),
        Err(_) => match scenario.start_at.parse::<Timestamp>() {
            Ok(t) => t,
            Err(e) => {
                return Run {
                    failure: Some(format!("`start_at: {}` is not an RFC 3339 moment: {e}", scenario.start_at)),
                    trace: String::new(),
                    world: World::new(processes.iter().cloned(), Timestamp::UNIX_EPOCH),
                };
            }
        },
    };
    let processes = match with_params(scenario, processes) {
        Ok(p) => p,
        Err(e) => {
            return Run { failure: Some(e), trace: String::new(), world: World::new(Vec::new(), start_at) };
        }
    };
    let processes = processes.as_slice();
    let mut world = World::new(processes.iter().cloned(), start_at);
    for (action, reply) in &scenario.actions {
        if reply.manual == Some(true) {
            world.replies.remove(action);
            continue;
        }
        let r = match (&reply.error, &reply.output) {
            (Some(error), _) => Reply::Fail { error: error.clone(), retryable: reply.retryable.unwrap_or(true) },
            (None, output) => Reply::Ok(output.clone().unwrap_or(Value::Object(Default::default()))),
        };
        world.replies.insert(action.clone(), r);
    }
    let tz = trace_zone(scenario, processes);
    let failure = drive(scenario, &mut world).err();
    let trace = render(&world, &tz);
    Run { failure, trace, world }
}

/// The processes with the scenario's parameter values applied to its own process: the process
/// is compiled again from its document with new defaults, as an overlay would resolve it.
fn with_params(scenario: &Scenario, processes: &[Arc<Process>]) -> Result<Vec<Arc<Process>>, String> {
    if scenario.params.is_empty() {
        return Ok(processes.to_vec());
    }
    let mut out = Vec::with_capacity(processes.len());
    for p in processes {
        if p.id != scenario.process {
            out.push(Arc::clone(p));
            continue;
        }
        let mut doc = p.document.clone();
        for (name, value) in &scenario.params {
            let slot = doc
                .pointer_mut(&format!("/process/parameters/{name}/default"))
                .ok_or_else(|| format!("`{}` has no parameter `{name}`", p.id))?;
            *slot = value.clone();
        }
        let options = model::Options { sandbox: Arc::clone(&p.sandbox), actions: None, ..model::Options::default() };
        let compiled = model::compile_document(&doc, &options).map_err(|d| {
            let list: Vec<String> = d.iter().map(|x| x.message.clone()).collect();
            format!("the parameter values do not fit: {}", list.join("; "))
        })?;
        out.push(Arc::new(compiled));
    }
    Ok(out)
}

fn trace_zone(scenario: &Scenario, processes: &[Arc<Process>]) -> TimeZone {
    if let Some(name) = &scenario.timezone
        && let Ok(tz) = TimeZone::get(name)
    {
        return tz;
    }
    // The process's own calendar says where it runs; without one, the offset the scenario
    // wrote its start time in.
    let declared = processes
        .iter()
        .find(|p| p.id == scenario.process)
        .filter(|p| p.document.pointer("/process/calendar").is_some_and(|c| c.is_string()));
    match declared {
        Some(p) => p.default_calendar.timezone().clone(),
        None => jiff::fmt::temporal::Pieces::parse(&scenario.start_at)
            .ok()
            .and_then(|p| p.to_numeric_offset())
            .map_or(TimeZone::UTC, TimeZone::fixed),
    }
}

/// The trace: one line per event, with the local time and, for instances other than the
/// scenario's own, which one.
pub fn render(world: &World, tz: &TimeZone) -> String {
    let mut out = String::new();
    for l in &world.log {
        let when = l.at.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M");
        let who = if l.instance == MAIN { String::new() } else { format!("[{} {}] ", l.process, l.instance) };
        out.push_str(&format!("{when}  {who}{}\n", machine::trace::line(&l.event, tz)));
    }
    for (instance, r) in &world.refused {
        out.push_str(&format!("!! refused for {instance}: {r}\n"));
    }
    out
}

fn drive(scenario: &Scenario, world: &mut World) -> Result<(), String> {
    let start = World::start_args(
        MAIN,
        scenario.dealer.as_deref().unwrap_or("dealer"),
        scenario.business_key.clone(),
        scenario.data.clone(),
        Actor::System,
    );
    world.start(&scenario.process, start).map_err(|r| format!("the instance could not start: {}", describe(&r)))?;
    for (i, step) in scenario.steps.iter().enumerate() {
        perform(scenario, world, step).map_err(|e| format!("step {} ({}): {e}", i + 1, step.verb()))?;
    }
    Ok(())
}

fn user(scenario: &Scenario, by: Option<&String>) -> Result<User, String> {
    let id = by.ok_or("say who acts, with `by:`")?;
    let roles = scenario.users.get(id).ok_or_else(|| {
        format!(
            "`{id}` is not one of the scenario's users ({})",
            scenario.users.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })?;
    Ok(User::new(id.clone(), roles.clone()))
}

fn target(world: &World, step: &ScenarioStep) -> Result<String, String> {
    match &step.in_process {
        None => Ok(MAIN.into()),
        Some(p) => {
            world.latest_of(p).map(|s| s.instance.id.clone()).ok_or_else(|| format!("no instance of `{p}` has started"))
        }
    }
}

fn task_at(world: &World, instance: &str, step_id: &str) -> Result<String, String> {
    let slot = world.slot(instance).ok_or("the instance is gone")?;
    slot.instance.tasks.iter().find(|t| t.step == step_id).map(|t| t.id.clone()).ok_or_else(|| {
        let open: Vec<&str> = slot.instance.tasks.iter().map(|t| t.step.as_str()).collect();
        format!("no task is open at `{step_id}`; open tasks: [{}]", open.join(", "))
    })
}

fn job_at(world: &World, instance: &str, step_id: &str) -> Result<String, String> {
    let slot = world.slot(instance).ok_or("the instance is gone")?;
    slot.instance
        .jobs
        .iter()
        .find(|j| j.origin == step_id)
        .map(|j| j.id.clone())
        .ok_or_else(|| format!("no action is pending at `{step_id}`"))
}

fn incident_at(world: &World, instance: &str, step_id: &str) -> Result<String, String> {
    let slot = world.slot(instance).ok_or("the instance is gone")?;
    slot.instance
        .incidents
        .iter()
        .find(|i| i.step == step_id)
        .map(|i| i.id.clone())
        .ok_or_else(|| format!("no incident is open at `{step_id}`"))
}

fn perform(scenario: &Scenario, world: &mut World, step: &ScenarioStep) -> Result<(), String> {
    let instance = target(world, step)?;
    let input = if let Some(s) = &step.complete {
        let task = task_at(world, &instance, s)?;
        Some(Input::Complete {
            task,
            by: user(scenario, step.by.as_ref())?,
            form: step.form.clone().unwrap_or(Value::Null),
        })
    } else if let Some(s) = &step.claim {
        Some(Input::Claim { task: task_at(world, &instance, s)?, by: user(scenario, step.by.as_ref())? })
    } else if let Some(s) = &step.unclaim {
        Some(Input::Unclaim { task: task_at(world, &instance, s)?, by: user(scenario, step.by.as_ref())? })
    } else if let Some(s) = &step.delegate {
        Some(Input::Delegate {
            task: task_at(world, &instance, s)?,
            by: user(scenario, step.by.as_ref())?,
            to: user(scenario, step.to.as_ref())?,
        })
    } else if let Some(m) = &step.message {
        Some(Input::Message {
            name: m.name.clone(),
            key: m.key.clone(),
            payload: m.payload.clone().unwrap_or(Value::Null),
        })
    } else if let Some(s) = &step.reply {
        Some(Input::ActionSucceeded {
            job: job_at(world, &instance, s)?,
            output: step.output.clone().unwrap_or(Value::Null),
        })
    } else if let Some(s) = &step.fail {
        Some(Input::ActionFailed {
            job: job_at(world, &instance, s)?,
            error: "failed in the scenario".into(),
            retryable: step.retryable.unwrap_or(true),
        })
    } else if let Some(s) = &step.retry_incident {
        Some(Input::RetryIncident {
            incident: incident_at(world, &instance, s)?,
            by: user(scenario, step.by.as_ref())?,
        })
    } else if let Some(s) = &step.skip_incident {
        Some(Input::SkipIncident { incident: incident_at(world, &instance, s)?, by: user(scenario, step.by.as_ref())? })
    } else if let Some(reason) = &step.cancel {
        let by = match &step.by {
            Some(id) => Actor::User { id: id.clone(), role: None },
            None => Actor::System,
        };
        Some(Input::Cancel { by, reason: reason.clone() })
    } else {
        None
    };
    if let Some(input) = input {
        let result = world.apply(&instance, input);
        match (result, &step.rejected) {
            (Ok(()), None) => {}
            (Ok(()), Some(expected)) => return Err(format!("expected a refusal ({expected}), but it was accepted")),
            (Err(r), None) => return Err(format!("refused: {}", describe(&r))),
            (Err(r), Some(expected)) => {
                if rejection_name(&r) != expected {
                    return Err(format!(
                        "expected the refusal {expected}, got {}: {}",
                        rejection_name(&r),
                        describe(&r)
                    ));
                }
                if let (Some(fields), Rejection::InvalidForm(errors)) = (&step.errors, &r) {
                    let mut got: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
                    got.sort();
                    got.dedup();
                    let mut want: Vec<&str> = fields.iter().map(String::as_str).collect();
                    want.sort();
                    if got != want {
                        return Err(format!("the form errors were reported at {got:?}, expected {want:?}"));
                    }
                }
            }
        }
    }
    if let Some(d) = &step.advance {
        let d = calendar::parse_duration(d).map_err(|e| format!("`advance: {d}`: {e}"))?;
        world.advance(d);
    }
    if let Some(t) = &step.advance_to {
        let at = t
            .parse::<jiff::Zoned>()
            .map(|z| z.timestamp())
            .or_else(|_| t.parse::<Timestamp>())
            .map_err(|e| format!("`advance_to: {t}`: {e}"))?;
        world.advance_to(at);
    }
    if let Some(expect) = &step.expect {
        check(world, &instance, expect)?;
    }
    Ok(())
}

/// The snake_case name of a refusal, as scenarios write it.
pub fn rejection_name(r: &Rejection) -> &'static str {
    match r {
        Rejection::Ended => "ended",
        Rejection::NoSuchTask(_) => "no_such_task",
        Rejection::NotCandidate { .. } => "not_candidate",
        Rejection::ClaimedByOther { .. } => "claimed_by_other",
        Rejection::NotAssignee(_) => "not_assignee",
        Rejection::DelegateLacksRole { .. } => "delegate_lacks_role",
        Rejection::InvalidForm(_) => "invalid_form",
        Rejection::InvalidData(_) => "invalid_data",
        Rejection::NotWaiting(_) => "not_waiting",
        Rejection::Stale(_) => "stale",
        Rejection::NoSuchIncident(_) => "no_such_incident",
    }
}

fn describe(r: &Rejection) -> String {
    match r {
        Rejection::InvalidForm(errors) | Rejection::InvalidData(errors) => {
            let list: Vec<String> = errors.iter().map(|e| format!("{} {}", e.path, e.message)).collect();
            format!("{r}: {}", list.join("; "))
        }
        other => other.to_string(),
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn check(world: &World, instance: &str, e: &Expect) -> Result<(), String> {
    let slot = world.slot(instance).ok_or("the instance is gone")?;
    let inst = &slot.instance;
    let mut problems = Vec::new();
    if let Some(want) = &e.tasks {
        let got = sorted(inst.tasks.iter().map(|t| t.step.clone()).collect());
        if got != sorted(want.clone()) {
            problems.push(format!("open tasks are {got:?}, expected {:?}", sorted(want.clone())));
        }
    }
    if let Some(want) = &e.position {
        let got = sorted(inst.tokens.iter().map(|t| slot.process.step(t.step).id.clone()).collect());
        if got != sorted(want.clone()) {
            problems.push(format!("the position is {got:?}, expected {:?}", sorted(want.clone())));
        }
    }
    if let Some(want) = &e.data {
        for (k, v) in want {
            match inst.data.get(k) {
                Some(got) if got == v => {}
                Some(got) => problems.push(format!("`{k}` is {got}, expected {v}")),
                None => problems.push(format!("`{k}` is not set, expected {v}")),
            }
        }
    }
    if let Some(want) = &e.outcome {
        let got = match &inst.status {
            machine::Status::Running => "running".to_string(),
            machine::Status::Ended { outcome, .. } => outcome.clone(),
        };
        if &got != want {
            problems.push(format!("the outcome is {got}, expected {want}"));
        }
    }
    if let Some(want) = &e.incidents {
        let got = sorted(inst.incidents.iter().map(|i| i.step.clone()).collect());
        if got != sorted(want.clone()) {
            let msgs: Vec<&str> = inst.incidents.iter().map(|i| i.message.as_str()).collect();
            problems.push(format!("incidents are at {got:?} ({msgs:?}), expected {:?}", sorted(want.clone())));
        }
    }
    if let Some(want) = &e.timers {
        let got = sorted(
            inst.timers
                .iter()
                .filter_map(|t| match &t.kind {
                    machine::TimerKind::Step { def, .. } => Some(def.clone()),
                    _ => None,
                })
                .collect(),
        );
        if got != sorted(want.clone()) {
            problems.push(format!("armed timers are {got:?}, expected {:?}", sorted(want.clone())));
        }
    }
    let task = |step: &str| inst.tasks.iter().find(|t| t.step == step);
    if let Some(want) = &e.assignees {
        for (step, who) in want {
            match task(step) {
                None => problems.push(format!("no task is open at `{step}`")),
                Some(t) => {
                    let got = t.assignee.clone().unwrap_or_else(|| "nobody".into());
                    if &got != who {
                        problems.push(format!("the task at `{step}` is assigned to {got}, expected {who}"));
                    }
                }
            }
        }
    }
    if let Some(want) = &e.roles {
        for (step, roles) in want {
            match task(step) {
                None => problems.push(format!("no task is open at `{step}`")),
                Some(t) if sorted(t.roles.clone()) != sorted(roles.clone()) => {
                    problems.push(format!("the task at `{step}` is for {:?}, expected {:?}", t.roles, roles))
                }
                Some(_) => {}
            }
        }
    }
    if let Some(want) = &e.due {
        for (step, due) in want {
            let expected = due.parse::<jiff::Zoned>().map(|z| z.timestamp()).or_else(|_| due.parse::<Timestamp>());
            match (task(step), expected) {
                (None, _) => problems.push(format!("no task is open at `{step}`")),
                (_, Err(err)) => problems.push(format!("`{due}` is not an RFC 3339 moment: {err}")),
                (Some(t), Ok(at)) if t.due_at != Some(at) => problems
                    .push(format!("the task at `{step}` is due {:?}, expected {at}", t.due_at.map(|d| d.to_string()))),
                _ => {}
            }
        }
    }
    if let Some(want) = &e.priority {
        for (step, p) in want {
            match task(step) {
                None => problems.push(format!("no task is open at `{step}`")),
                Some(t) if t.priority.as_str() != p => {
                    problems.push(format!("the task at `{step}` has priority {}, expected {p}", t.priority.as_str()))
                }
                Some(_) => {}
            }
        }
    }
    if let Some(want) = &e.invoked {
        let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
        for l in world.log.iter().filter(|l| l.instance == instance) {
            if let Event::ActionInvoked { action, .. } = &l.event {
                *counts.entry(action.as_str()).or_default() += 1;
            }
        }
        for (action, n) in want {
            let got = counts.get(action.as_str()).copied().unwrap_or(0);
            if got != *n {
                problems.push(format!("`{action}` was invoked {got} time(s), expected {n}"));
            }
        }
    }
    if let Some(want) = &e.breaches {
        let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
        for l in world.log.iter().filter(|l| l.instance == instance) {
            if let Event::SlaBreached { step, .. } = &l.event {
                *counts.entry(step.as_str()).or_default() += 1;
            }
        }
        for (step, n) in want {
            let got = counts.get(step.as_str()).copied().unwrap_or(0);
            if got != *n {
                problems.push(format!("`{step}` breached its SLA {got} time(s), expected {n}"));
            }
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
}
