//! The readable trace: one line per event, so that anyone can see why an instance went where it
//! went (which guards were tried, what they gave, who did what, which timer fired).

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::Value;

use crate::io::{Actor, Event};

/// Renders an event as one line (without the time).
pub fn line(event: &Event, tz: &TimeZone) -> String {
    let t = |ts: &Timestamp| ts.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M").to_string();
    match event {
        Event::Started { process, version, by, data, .. } => {
            format!("start {process} v{version} by {}, data {}", actor(by), compact(data))
        }
        Event::Entered { step, kind, .. } => format!("enter {step} ({kind})"),
        Event::TaskOpened { task, step, roles, assignee, priority, due_at, .. } => {
            let mut s = format!("open task {} at {step} for {}", short(task), roles.join("|"));
            if let Some(a) = assignee {
                s.push_str(&format!(", assigned to {a}"));
            }
            if *priority != model::Priority::Normal {
                s.push_str(&format!(", {}", priority.as_str()));
            }
            if let Some(d) = due_at {
                s.push_str(&format!(", due {}", t(d)));
            }
            s
        }
        Event::TaskClaimed { task, by } => format!("claim {} by {}", short(task), actor(by)),
        Event::TaskUnclaimed { task, by } => format!("unclaim {} by {}", short(task), actor(by)),
        Event::TaskDelegated { task, by, to } => format!("delegate {} by {} to {to}", short(task), actor(by)),
        Event::TaskCompleted { task, step, by, form, due_at, .. } => {
            let mut s = format!("complete {} at {step} by {}", short(task), actor(by));
            if form.as_object().is_some_and(|m| !m.is_empty()) {
                s.push_str(&format!(": {}", compact(form)));
            }
            let _ = due_at;
            s
        }
        Event::TaskCancelled { task, step } => format!("cancel task {} at {step}", short(task)),
        Event::TaskEscalated { task, add_roles, assignee, priority } => {
            let mut parts = Vec::new();
            if !add_roles.is_empty() {
                parts.push(format!("add roles {}", add_roles.join("|")));
            }
            match assignee.as_deref() {
                Some("") => parts.push("back to the pool".into()),
                Some(a) => parts.push(format!("assign to {a}")),
                None => {}
            }
            if let Some(p) = priority {
                parts.push(format!("priority {}", p.as_str()));
            }
            format!("escalate {}: {}", short(task), parts.join(", "))
        }
        Event::Decided { step, guards, to, default } => {
            let tried: Vec<String> = guards.iter().map(|(g, v)| format!("[{}] = {v}", g.trim())).collect();
            let tail = if *default { format!("default -> {to}") } else { format!("-> {to}") };
            if tried.is_empty() {
                format!("decide {step}: {tail}")
            } else {
                format!("decide {step}: {}; {tail}", tried.join(", "))
            }
        }
        Event::Forked { step, branches } => format!("fork {step} into {}", branches.join(", ")),
        Event::Arrived { step, branch, arrived, needed } => {
            format!("arrive at {step} from branch {} ({arrived} of {needed})", branch + 1)
        }
        Event::Joined { step, aborted, guard, to } => {
            let g = guard.as_ref().map(|(s, v)| format!(" [{}] = {v};", s.trim())).unwrap_or_default();
            if *aborted { format!("join {step} stopped early:{g} -> {to}") } else { format!("join {step}:{g} -> {to}") }
        }
        Event::Set { name, value } => format!("set {name} = {}", compact(value)),
        Event::TimerArmed { timer, def, fire_at } => format!("arm timer {} ({def}) for {}", short(timer), t(fire_at)),
        Event::TimerFired { timer, def, late_secs } => {
            if *late_secs > 0 {
                format!("fire timer {} ({def}), {late_secs}s late", short(timer))
            } else {
                format!("fire timer {} ({def})", short(timer))
            }
        }
        Event::TimerSkipped { def, guard } => format!("skip timer {def}: [{}] = false", guard.trim()),
        Event::SlaBreached { task, step, due_at } => {
            format!("SLA breached: {} at {step} was due {}", short(task), t(due_at))
        }
        Event::ActionInvoked { job, action, attempt, input } => {
            let tries = if *attempt > 1 { format!(" (try {attempt})") } else { String::new() };
            format!("invoke {action} {}{tries}: {}", short(job), compact(input))
        }
        Event::ActionSucceeded { job, action, output } => {
            format!("{action} {} answered {}", short(job), compact(output))
        }
        Event::ActionFailed { job, action, error, retry_at } => match retry_at {
            Some(at) => format!("{action} {} failed: {error}; retry at {}", short(job), t(at)),
            None => format!("{action} {} failed for good: {error}", short(job)),
        },
        Event::Awaiting { name, key } => format!("await message {name}{}", key_suffix(key)),
        Event::Received { name, key, payload } => {
            format!("receive message {name}{}: {}", key_suffix(key), compact(payload))
        }
        Event::Sent { name, key } => format!("send message {name}{}", key_suffix(key)),
        Event::ChildStarted { child, process } => format!("start child {} ({process})", short(child)),
        Event::ChildEnded { child, outcome } => format!("child {} ended: {outcome}", short(child)),
        Event::IncidentRaised { incident, step, message } => {
            format!("INCIDENT {} at {step}: {message}", short(incident))
        }
        Event::IncidentResolved { incident, how, by } => format!("incident {} {how} by {}", short(incident), actor(by)),
        Event::Cancelled { by, reason } => format!("cancelled by {}: {reason}", actor(by)),
        Event::Ended { outcome, step } => match step {
            Some(s) => format!("end at {s}: {outcome}"),
            None => format!("end: {outcome}"),
        },
    }
}

/// Who, in words.
pub fn actor(a: &Actor) -> String {
    match a {
        Actor::User { id, role: Some(r) } => format!("{id} ({r})"),
        Actor::User { id, role: None } => id.clone(),
        Actor::System => "system".into(),
        Actor::Timer => "timer".into(),
        Actor::Action { name } => format!("action {name}"),
        Actor::Message => "message".into(),
    }
}

/// The local part of a derived id (`i1-t3` -> `t3`): the instance id is the same on every line.
fn short(id: &str) -> &str {
    id.rsplit('-').next().unwrap_or(id)
}

fn key_suffix(key: &Option<String>) -> String {
    key.as_ref().map(|k| format!(" [{k}]")).unwrap_or_default()
}

fn compact(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 160 { format!("{}…", s.chars().take(160).collect::<String>()) } else { s }
}
