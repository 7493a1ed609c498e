//! A process as a Mermaid flowchart, so that a process owner can see what they wrote: tasks
//! with their roles, decisions with their guards, loops, parallel splits and joins, timers
//! (dotted), messages and subprocesses.

use std::fmt::Write;

use crate::process::{DurationRule, EdgeKind, Moment, Process, StepKind, TimerDef};

/// Options for drawing.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `zh` or `en` (default `en`).
    pub lang: String,
    /// Steps to highlight (an instance's current position).
    pub highlight: Vec<String>,
}

/// The flowchart source.
pub fn flowchart(p: &Process, options: &Options) -> String {
    let lang = if options.lang == "zh" { "zh" } else { "en" };
    let mut out = String::from("flowchart TD\n");
    let _ = writeln!(out, "  start_(( )) --> {}", node_id(&p.step(p.start).id));
    for step in &p.steps {
        let id = node_id(&step.id);
        let title = step.title.text(lang);
        let name = if title.is_empty() { step.id.clone() } else { title.to_string() };
        let shape = match &step.kind {
            StepKind::Task { task, .. } => {
                format!("[\"{}<br/><small>{}</small>\"]", esc(&name), esc(&task.roles.join(", ")))
            }
            StepKind::Action { action, .. } => format!("[[\"{}<br/><small>⚙ {}</small>\"]]", esc(&name), esc(action)),
            StepKind::Decision { .. } => format!("{{\"{}\"}}", esc(&name)),
            StepKind::Parallel { .. } => format!("{{{{\"∥ {}\"}}}}", esc(&name)),
            StepKind::Join { .. } => format!("{{{{\"⋈ {}\"}}}}", esc(&name)),
            StepKind::Wait { until, .. } => {
                format!("[/\"⏳ {}<br/><small>{}</small>\"/]", esc(&name), esc(&moment(until)))
            }
            StepKind::Receive { message, .. } => {
                format!(">\"✉ {}<br/><small>waits for {}</small>\"]", esc(&name), esc(message))
            }
            StepKind::Send { message, .. } => {
                format!(">\"✉ {}<br/><small>sends {}</small>\"]", esc(&name), esc(message))
            }
            StepKind::Subprocess { process, .. } => {
                format!("[[\"↳ {}<br/><small>{}</small>\"]]", esc(&name), esc(process))
            }
            StepKind::End { outcome, .. } => {
                format!("([\"■ {}\"])", esc(if title.is_empty() { outcome } else { &name }))
            }
        };
        let _ = writeln!(out, "  {id}{shape}");
    }
    for step in &p.steps {
        let from = node_id(&step.id);
        for e in step.kind.edges() {
            let to = node_id(&p.step(e.to).id);
            let label = match (&step.kind, e.kind) {
                (StepKind::Decision { branches, .. }, EdgeKind::Branch(i)) => branches.get(i).map(|b| match &b.label {
                    Some(l) if !l.text(lang).is_empty() => l.text(lang).to_string(),
                    _ => b.guard.source().trim().to_string(),
                }),
                (_, EdgeKind::Default) => Some("else".into()),
                (_, EdgeKind::Abort) => Some("stop early".into()),
                (_, EdgeKind::OnFailure) => Some("failed".into()),
                (_, EdgeKind::Timer(i)) => step.kind.timers().get(i).map(timer_label),
                _ => None,
            };
            let arrow = if matches!(e.kind, EdgeKind::Timer(_)) { "-.->" } else { "-->" };
            match label {
                Some(l) => {
                    let _ = writeln!(out, "  {from} {arrow}|\"{}\"| {to}", esc(&l));
                }
                None => {
                    let _ = writeln!(out, "  {from} {arrow} {to}");
                }
            }
        }
        // Timers that do not leave the step are drawn as notes on a dotted line.
        for t in step.kind.timers().iter().filter(|t| t.goto.is_none()) {
            let note = format!("{}__{}", from, node_id(&t.id));
            let _ = writeln!(out, "  {note}>\"{}\"]", esc(&timer_label(t)));
            let _ = writeln!(out, "  {from} -.- {note}");
        }
    }
    for h in &options.highlight {
        let _ = writeln!(out, "  style {} fill:#fde68a,stroke:#b45309,stroke-width:3px", node_id(h));
    }
    out
}

fn timer_label(t: &TimerDef) -> String {
    let when = match &t.every {
        Some((d, _)) => format!("every {}", calendar::format_duration(*d)),
        None => moment(&t.first),
    };
    let mut what = Vec::new();
    if t.notify.is_some() {
        what.push("notify".to_string());
    }
    if let Some((a, _)) = &t.invoke {
        what.push(a.clone());
    }
    if t.escalate.is_some() {
        what.push("escalate".to_string());
    }
    if t.open_task.is_some() {
        what.push("open task".to_string());
    }
    if t.goto.is_some() {
        what.push("go".to_string());
    }
    format!("⏱ {} {when}: {}", t.id, what.join(", "))
}

fn moment(m: &Moment) -> String {
    match m {
        Moment::After { duration: DurationRule::Fixed(d), calendar } => {
            let working = if calendar.is_some() { " working" } else { "" };
            format!("after {}{working}", calendar::format_duration(*d))
        }
        Moment::After { duration: DurationRule::Expr(e), .. } => format!("after {}", e.source().trim()),
        Moment::At { expr, .. } => format!("at {}", expr.source().trim()),
        Moment::AtDue => "at due".into(),
    }
}

/// Mermaid ids: our ids are snake_case already; `end` is a Mermaid keyword.
fn node_id(id: &str) -> String {
    format!("s_{id}")
}

fn esc(s: &str) -> String {
    s.replace('"', "#quot;").replace('\n', " ")
}
