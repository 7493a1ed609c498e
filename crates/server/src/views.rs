//! Conversions from the core's and the store's types to the API's DTOs, and the small
//! computations the views need (the SLA badge, cursors, time formatting).

use jiff::{SignedDuration, Timestamp};
use machine::{Instance, Status, Wait};
use model::{Process, StepKind};
use serde_json::Value;
use store::{AuditRow, InboxCursor, Millis, TaskRow};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::dto::{
    AuditEntryDto, ChildDto, GraphFormat, IncidentDto, InstanceDto, InstanceStatus, LabelDto, ParentDto, PositionDto,
    Priority, RoleDto, Sla, TaskDto, TimerDto,
};
use crate::error::Error;
use crate::state::Catalogue;

/// RFC 3339 in UTC.
pub fn time(t: Timestamp) -> String {
    t.to_string()
}

/// Stored milliseconds as RFC 3339.
pub fn time_ms(ms: Millis) -> String {
    Timestamp::from_millisecond(ms).map(time).unwrap_or_default()
}

/// Parses an RFC 3339 query value.
pub fn parse_time(name: &str, value: &str) -> Result<Timestamp, Error> {
    value.parse().map_err(|e| Error::BadRequest(format!("`{name}` is not an RFC 3339 time: {e}")))
}

/// The SLA badge: overdue past the due time; due soon within 30 minutes or 10% of the time
/// the task was given, whichever is larger.
pub fn sla(due_at: Option<Millis>, created_at: Millis, now: Millis) -> Sla {
    let Some(due) = due_at else { return Sla::OnTime };
    if due <= now {
        return Sla::Overdue;
    }
    let window = ((due - created_at) / 10).max(SignedDuration::from_mins(30).as_millis() as i64);
    if due - now <= window { Sla::DueSoon } else { Sla::OnTime }
}

/// A role with its names from the catalogue (its id when the catalogue lacks it).
pub fn role(id: &str, catalogue: &Catalogue) -> RoleDto {
    match catalogue.roles().get(id) {
        Some(label) => {
            RoleDto { id: id.to_string(), zh: label.text("zh").to_string(), en: label.text("en").to_string() }
        }
        None => RoleDto { id: id.to_string(), zh: id.to_string(), en: id.to_string() },
    }
}

/// Roles with their names, in the given order.
pub fn roles(ids: &[String], catalogue: &Catalogue) -> Vec<RoleDto> {
    ids.iter().map(|r| role(r, catalogue)).collect()
}

/// A task of the inbox projection.
pub fn task_row(t: &TaskRow, catalogue: &Catalogue, now: Timestamp) -> TaskDto {
    let now_ms = now.as_millisecond();
    TaskDto {
        id: t.id.clone(),
        instance: t.instance_id.clone(),
        dealer: t.dealer.clone(),
        process: t.process_id.clone(),
        process_title: LabelDto::from(&catalogue.process_title(&t.process_id)),
        step: t.step.clone(),
        title: LabelDto { zh: t.title_zh.clone(), en: t.title_en.clone() },
        roles: t.roles.clone(),
        role_names: roles(&t.roles, catalogue),
        assignee: t.assignee.clone(),
        priority: Priority::parse(&t.priority),
        due_at: t.due_at.map(time_ms),
        created_at: time_ms(t.created_at),
        business_key: t.business_key.clone(),
        sla: sla(t.due_at, t.created_at, now_ms),
        form: t.form.clone(),
        now: time(now),
    }
}

/// A task of an instance snapshot.
pub fn task_of(i: &Instance, t: &machine::Task, p: &Process, catalogue: &Catalogue, now: Timestamp) -> TaskDto {
    let due = t.due_at.map(Timestamp::as_millisecond);
    let created = t.created_at.as_millisecond();
    TaskDto {
        id: t.id.clone(),
        instance: i.id.clone(),
        dealer: i.dealer.clone(),
        process: i.process.clone(),
        process_title: LabelDto::from(&p.title),
        step: t.step.clone(),
        title: LabelDto::from(&t.title),
        roles: t.roles.clone(),
        role_names: roles(&t.roles, catalogue),
        assignee: t.assignee.clone(),
        priority: Priority::parse(t.priority.as_str()),
        due_at: t.due_at.map(time),
        created_at: time(t.created_at),
        business_key: i.business_key.clone(),
        sla: sla(due, created, now.as_millisecond()),
        form: t.form.clone(),
        now: time(now),
    }
}

/// An instance with its process.
pub fn instance(i: &Instance, p: &Process, catalogue: &Catalogue, now: Timestamp) -> InstanceDto {
    let (status, outcome, ended_at) = match &i.status {
        Status::Running if !i.incidents.is_empty() => (InstanceStatus::Incident, None, None),
        Status::Running => (InstanceStatus::Running, None, None),
        Status::Ended { outcome, at } => (InstanceStatus::Ended, Some(outcome.clone()), Some(time(*at))),
    };
    let position = i
        .tokens
        .iter()
        .map(|tok| {
            let step = p.step(tok.step);
            PositionDto {
                step: step.id.clone(),
                title: LabelDto::from(&step.title),
                kind: step.kind.name().to_string(),
                waiting_for: waiting_for(&tok.wait),
                since: time(tok.entered_at),
            }
        })
        .collect();
    InstanceDto {
        id: i.id.clone(),
        process: i.process.clone(),
        process_title: LabelDto::from(&p.title),
        version: i.process_version,
        hash: i.process_hash.clone(),
        dealer: i.dealer.clone(),
        business_key: i.business_key.clone(),
        status,
        outcome,
        data: i.data.clone(),
        position,
        tasks: i.tasks.iter().map(|t| task_of(i, t, p, catalogue, now)).collect(),
        timers: i
            .timers
            .iter()
            .map(|t| TimerDto {
                id: t.id.clone(),
                def: match &t.kind {
                    machine::TimerKind::Step { def, .. } => def.clone(),
                    machine::TimerKind::Wait => "wait".into(),
                    machine::TimerKind::Retry { .. } => "retry".into(),
                    machine::TimerKind::Due { .. } => "due".into(),
                },
                fire_at: time(t.fire_at),
            })
            .collect(),
        incidents: i
            .incidents
            .iter()
            .map(|x| IncidentDto { id: x.id.clone(), step: x.step.clone(), message: x.message.clone(), at: time(x.at) })
            .collect(),
        parent: i.parent.as_ref().map(|l| ParentDto { id: l.instance.clone(), step: l.step.clone() }),
        children: i
            .children
            .iter()
            .map(|c| ChildDto {
                id: c.instance.clone(),
                process: c.process.clone(),
                step: c.step.clone(),
                outcome: c.outcome.clone(),
            })
            .collect(),
        started_at: time(i.started_at),
        ended_at,
        now: time(now),
    }
}

fn waiting_for(w: &Wait) -> String {
    match w {
        Wait::Entering => "entering".into(),
        Wait::Task { task } => format!("task {task}"),
        Wait::Job { job } => format!("action {job}"),
        Wait::Message { name, key } => match key {
            Some(k) => format!("message {name} ({k})"),
            None => format!("message {name}"),
        },
        Wait::Child { child } => format!("instance {child}"),
        Wait::Timer { timer } => format!("timer {timer}"),
        Wait::Join { .. } => "the other branches".into(),
        Wait::Incident { incident } => format!("incident {incident}"),
    }
}

/// The JSON Schema of a task's form: the step's form, or the form of the timer that opened a
/// side task; a closed empty object when the task has no form.
pub fn form_schema(p: &Process, step: &str) -> Value {
    let form = match p.step_idx(step).map(|i| &p.step(i).kind) {
        Some(StepKind::Task { task, .. }) => task.form.as_ref(),
        _ => p.timer(step).and_then(|(_, t)| t.open_task.as_ref()).and_then(|(task, _)| task.form.as_ref()),
    };
    form.map(|f| f.schema.clone())
        .unwrap_or_else(|| serde_json::json!({ "type": "object", "additionalProperties": false }))
}

/// An audit row.
pub fn audit_entry(r: &AuditRow) -> AuditEntryDto {
    AuditEntryDto {
        seq: r.seq,
        chain_seq: r.chain_seq,
        at: time_ms(r.at),
        actor: serde_json::from_str(&r.actor).unwrap_or(Value::Null),
        kind: r.kind.clone(),
        step: r.step.clone(),
        entry: serde_json::from_str(&r.entry).unwrap_or(Value::Null),
        definition_hash: r.definition_hash.clone(),
        prev_hash: r.prev_hash.clone(),
        hash: r.hash.clone(),
    }
}

/// The format a graph request asks for: SVG when the `Accept` header names `image/svg+xml`
/// at least as strongly as `application/json`; otherwise (no header, `*/*`, JSON) the
/// Mermaid JSON every earlier client gets. Wildcards never outrank an explicit SVG.
pub fn graph_format(accept: Option<&str>) -> GraphFormat {
    let (mut svg, mut json) = (0.0_f32, 0.0_f32);
    for range in accept.unwrap_or("").split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|v| v.parse::<f32>().ok())
            .unwrap_or(1.0)
            .clamp(0.0, 1.0);
        match media.as_str() {
            "image/svg+xml" => svg = svg.max(q),
            "application/json" => json = json.max(q),
            _ => {}
        }
    }
    if svg > 0.0 && svg >= json { GraphFormat::Svg } else { GraphFormat::Mermaid }
}

/// An SVG document as an answer (it varies by `Accept`, and a CSP keeps any script in it
/// inert if it is opened on its own).
pub fn svg_response(svg: String) -> Response {
    let mut res = (StatusCode::OK, svg).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml"));
    h.insert(header::VARY, HeaderValue::from_static("accept"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    res
}

/// Mermaid JSON as an answer that varies by `Accept`.
pub fn mermaid_response(graph: crate::dto::GraphDto) -> Response {
    let mut res = axum::Json(graph).into_response();
    res.headers_mut().insert(header::VARY, HeaderValue::from_static("accept"));
    res
}

/// The steps an instance has entered, from the events of its audit trail, in first-entered
/// order.
pub fn visited_steps(audit: &[AuditRow]) -> Vec<String> {
    let mut seen = Vec::new();
    for a in audit {
        let Ok(entry) = serde_json::from_str::<Value>(&a.entry) else { continue };
        for e in kpi::events_of_entry(&entry) {
            if let machine::Event::Entered { step, .. } = e
                && !seen.contains(&step)
            {
                seen.push(step);
            }
        }
    }
    seen
}

/// An opaque cursor for the inbox.
pub fn encode_task_cursor(c: &InboxCursor) -> String {
    hex::encode(format!("{}|{}", c.due_key, c.task_id))
}

/// Reads an inbox cursor.
pub fn decode_task_cursor(s: &str) -> Result<InboxCursor, Error> {
    let bad = || Error::BadRequest("`cursor` is not a cursor this server gave".into());
    let bytes = hex::decode(s).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (due, id) = text.split_once('|').ok_or_else(bad)?;
    Ok(InboxCursor { due_key: due.parse().map_err(|_| bad())?, task_id: id.to_string() })
}

/// An opaque cursor for the instance list (the last id).
pub fn encode_id_cursor(id: &str) -> String {
    hex::encode(id)
}

/// Reads an instance cursor.
pub fn decode_id_cursor(s: &str) -> Result<String, Error> {
    let bad = || Error::BadRequest("`cursor` is not a cursor this server gave".into());
    String::from_utf8(hex::decode(s).map_err(|_| bad())?).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn sla_is_due_soon_within_thirty_minutes_or_a_tenth_of_the_sla() {
        // A 1-hour SLA: due soon in its last 30 minutes.
        assert_eq!(sla(Some(60 * MIN), 0, 20 * MIN), Sla::OnTime);
        assert_eq!(sla(Some(60 * MIN), 0, 31 * MIN), Sla::DueSoon);
        assert_eq!(sla(Some(60 * MIN), 0, 60 * MIN), Sla::Overdue);
        // A 10-hour SLA: due soon in its last hour.
        assert_eq!(sla(Some(600 * MIN), 0, 530 * MIN), Sla::OnTime);
        assert_eq!(sla(Some(600 * MIN), 0, 545 * MIN), Sla::DueSoon);
        assert_eq!(sla(None, 0, 10 * MIN), Sla::OnTime);
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = InboxCursor { due_key: 42, task_id: "i-t1".into() };
        assert_eq!(decode_task_cursor(&encode_task_cursor(&c)).unwrap(), c);
        assert!(decode_task_cursor("zz").is_err());
        assert!(decode_task_cursor(&hex::encode("nope")).is_err());
        assert_eq!(decode_id_cursor(&encode_id_cursor("abc")).unwrap(), "abc");
    }
}
