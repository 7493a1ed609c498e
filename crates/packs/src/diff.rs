//! The compliance diff: for each dealer, every way its running process differs from the
//! standard, with a severity headquarters can sort by.
//!
//! Severities say how far a deviation can move the dealer away from the brand's standard:
//! `info` changes words only (labels, role titles) or only tightens (an added guard, a shorter
//! due time is `minor`); `minor` changes a value within what headquarters allowed (a parameter
//! in range, a calendar); `major` changes the shape or loosens a promise (a longer due time,
//! inserted or disabled steps). A deviation is computed from the overlay against the standard,
//! so it is the same whether or not the dealer has deployed yet.

use std::fmt::Write as _;

use model::raw;
use serde::Serialize;
use serde_json::Value;

use crate::overlay::OverlayFile;
use crate::pack::Pack;

/// How far a deviation moves a dealer from the standard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Changes the shape of the flow or loosens a promise.
    Major,
    /// Changes a value within what headquarters allows.
    Minor,
    /// Changes words, or only tightens.
    Info,
}

impl Severity {
    /// The word shown in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Major => "major",
            Severity::Minor => "minor",
            Severity::Info => "info",
        }
    }
}

/// What kind of change a deviation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviationKind {
    /// A step was inserted at an extension point.
    InsertedStep,
    /// An optional step was disabled.
    DisabledStep,
    /// A task's due time differs.
    Sla,
    /// A parameter differs from its default.
    Parameter,
    /// A calendar's hours or holidays differ.
    Calendar,
    /// A guard was added to a decision's branch.
    AddedGuard,
    /// A role has the dealer's own title.
    RoleTitle,
    /// A process or step has the dealer's own title.
    Label,
}

impl DeviationKind {
    /// The words shown in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviationKind::InsertedStep => "inserted step",
            DeviationKind::DisabledStep => "disabled step",
            DeviationKind::Sla => "sla",
            DeviationKind::Parameter => "parameter",
            DeviationKind::Calendar => "calendar",
            DeviationKind::AddedGuard => "added guard",
            DeviationKind::RoleTitle => "role title",
            DeviationKind::Label => "label",
        }
    }
}

/// One way a dealer differs from the standard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deviation {
    /// The dealer.
    pub dealer: String,
    /// The process, or none for what the whole pack shares (calendars, roles).
    pub process: Option<String>,
    /// What kind of change.
    pub kind: DeviationKind,
    /// What changed, within the process: a step, a parameter, `<decision> -> <branch>`, or a
    /// calendar or role id.
    pub path: String,
    /// The standard's value, in words.
    pub standard: String,
    /// The dealer's value, in words.
    pub dealer_value: String,
    /// How far it moves the dealer from the standard.
    pub severity: Severity,
}

/// Every deviation of each dealer's overlay from the standard pack, dealer by dealer in the
/// order given, most severe first. Changes that do not fit the pack (unknown ids, locked parts)
/// are left out: [`crate::resolve()`] reports those.
pub fn diff(pack: &Pack, overlays: &[OverlayFile]) -> Vec<Deviation> {
    let mut out = Vec::new();
    for file in overlays {
        let mut mine = deviations(pack, file);
        mine.sort_by(|a, b| (a.severity, &a.process, a.kind, &a.path).cmp(&(b.severity, &b.process, b.kind, &b.path)));
        out.extend(mine);
    }
    out
}

fn deviations(pack: &Pack, file: &OverlayFile) -> Vec<Deviation> {
    let o = &file.overlay;
    let dealer = o.overlay.clone();
    let mut out = Vec::new();
    let mut push = |process: Option<&str>, kind, path: String, standard: String, dealer_value: String, severity| {
        out.push(Deviation {
            dealer: dealer.clone(),
            process: process.map(str::to_string),
            kind,
            path,
            standard,
            dealer_value,
            severity,
        })
    };

    for (key, value) in &o.parameters {
        let targets: Vec<(String, String)> = match key.split_once('.') {
            Some((p, n)) => vec![(p.to_string(), n.to_string())],
            None => pack
                .processes
                .iter()
                .filter(|p| pack.raw_process(&p.id).is_some_and(|r| r.parameters.contains_key(key)))
                .map(|p| (p.id.clone(), key.clone()))
                .collect(),
        };
        for (process, name) in targets {
            let Some(param) = pack.raw_process(&process).and_then(|r| r.parameters.get(&name).cloned()) else {
                continue;
            };
            let Ok(standard) = model::validate::check_parameter_value(&param, &param.default) else { continue };
            let (dealer_value, severity) = match model::validate::check_parameter_value(&param, value) {
                Ok(v) if v == standard => continue,
                Ok(v) => (show(&v), Severity::Minor),
                Err(_) => (format!("{} (out of range)", show(value)), Severity::Major),
            };
            push(Some(&process), DeviationKind::Parameter, name, show(&standard), dealer_value, severity);
        }
    }

    for (key, value) in &o.sla {
        let Some((process, step)) = key.split_once('.') else { continue };
        let Some(raw::Step::Task(task)) = pack.raw_process(process).and_then(|r| r.steps.get(step).cloned()) else {
            continue;
        };
        let standard = pack
            .process(process)
            .and_then(|p| p.document.pointer(&format!("/process/steps/{step}/due")).cloned())
            .filter(|_| task.due.is_some());
        if standard.as_ref() == Some(value) {
            continue;
        }
        let severity = match (standard.as_ref().and_then(fixed_due), fixed_due(value)) {
            (Some((old, old_cal)), Some((new, new_cal))) if old_cal == new_cal => {
                if new == old {
                    continue;
                } else if new < old {
                    Severity::Minor
                } else {
                    Severity::Major
                }
            }
            // A due time where the standard has none only adds a promise.
            (None, Some(_)) if standard.is_none() => Severity::Minor,
            _ => Severity::Major,
        };
        let shown = standard.as_ref().map_or_else(|| "(none)".to_string(), show);
        push(Some(process), DeviationKind::Sla, step.to_string(), shown, show(value), severity);
    }

    for (name, spec) in &o.calendars {
        let Some(standard) = pack.calendar(name) else { continue };
        if standard == spec {
            continue;
        }
        push(
            None,
            DeviationKind::Calendar,
            name.clone(),
            calendar_summary(standard),
            calendar_summary(spec),
            Severity::Minor,
        );
    }

    for (role, label) in &o.roles {
        let Some(standard) = pack.manifest.roles.get(role) else { continue };
        let merged = merged(standard, label);
        if &merged == standard {
            continue;
        }
        push(None, DeviationKind::RoleTitle, role.clone(), label_text(standard), label_text(&merged), Severity::Info);
    }

    for (key, label) in &o.labels {
        let (process, step) = match key.split_once('.') {
            Some((p, s)) => (p, Some(s)),
            None => (key.as_str(), None),
        };
        let Some(raw) = pack.raw_process(process) else { continue };
        let standard = match step {
            None => Some(raw.title.clone()),
            Some(s) => raw.steps.get(s).map(|st| step_title(st).unwrap_or_default()),
        };
        let Some(standard) = standard else { continue };
        let merged = merged(&standard, label);
        if merged == standard {
            continue;
        }
        let path = step.map_or_else(|| "(title)".to_string(), str::to_string);
        push(Some(process), DeviationKind::Label, path, label_text(&standard), label_text(&merged), Severity::Info);
    }

    for insert in &o.insert {
        let Some((process, point)) = insert.at.split_once('.') else { continue };
        if !pack.policy(process).extension_points.contains_key(point) {
            continue;
        }
        for (id, step) in &insert.steps {
            let kind = step.get("type").and_then(Value::as_str).unwrap_or("step");
            let title = step.get("title").and_then(|t| serde_json::from_value::<raw::Label>(t.clone()).ok());
            let what = match title {
                Some(t) => format!("{kind} at {point}: {}", label_text(&t)),
                None => format!("{kind} at {point}"),
            };
            push(Some(process), DeviationKind::InsertedStep, id.clone(), "(none)".into(), what, Severity::Major);
        }
    }

    for target in &o.disable {
        let Some((process, step)) = target.split_once('.') else { continue };
        let Some(raw) = pack.raw_process(process) else { continue };
        let Some(st) = raw.steps.get(step) else { continue };
        let standard = step_title(st).map_or_else(|| "runs".to_string(), |t| format!("runs: {}", label_text(&t)));
        push(
            Some(process),
            DeviationKind::DisabledStep,
            step.to_string(),
            standard,
            "disabled".into(),
            Severity::Major,
        );
    }

    for g in &o.guards {
        let Some((process, step)) = g.step.split_once('.') else { continue };
        let Some(raw::Step::Decision(d)) = pack.raw_process(process).and_then(|r| r.steps.get(step).cloned()) else {
            continue;
        };
        let Some(branch) = d.branches.iter().find(|b| b.next == g.branch) else { continue };
        push(
            Some(process),
            DeviationKind::AddedGuard,
            format!("{step} -> {}", g.branch),
            branch.when.clone(),
            format!("also: {}", g.when),
            Severity::Info,
        );
    }
    out
}

/// A due time given as a fixed duration: its length and calendar.
fn fixed_due(v: &Value) -> Option<(jiff::SignedDuration, Option<String>)> {
    let (after, calendar) = match v {
        Value::String(s) => (s.as_str(), None),
        Value::Object(o) if o.get("at").is_none() => {
            (o.get("after")?.as_str()?, o.get("calendar").and_then(Value::as_str).map(str::to_string))
        }
        _ => return None,
    };
    if after.starts_with('=') {
        return None;
    }
    calendar::parse_duration(after).ok().map(|d| (d, calendar))
}

fn step_title(step: &raw::Step) -> Option<raw::Label> {
    match step {
        raw::Step::Task(s) => Some(s.title.clone()),
        raw::Step::Action(s) => s.title.clone(),
        raw::Step::Decision(s) => s.title.clone(),
        raw::Step::Parallel(s) => s.title.clone(),
        raw::Step::Join(s) => s.title.clone(),
        raw::Step::Wait(s) => s.title.clone(),
        raw::Step::Receive(s) => s.title.clone(),
        raw::Step::Send(s) => s.title.clone(),
        raw::Step::Subprocess(s) => s.title.clone(),
        raw::Step::End(s) => s.title.clone(),
    }
}

fn merged(standard: &raw::Label, over: &raw::Label) -> raw::Label {
    raw::Label {
        zh: over.zh.clone().or_else(|| standard.zh.clone()),
        en: over.en.clone().or_else(|| standard.en.clone()),
    }
}

fn label_text(l: &raw::Label) -> String {
    match (&l.zh, &l.en) {
        (Some(zh), Some(en)) => format!("{zh} / {en}"),
        (Some(t), None) | (None, Some(t)) => t.clone(),
        (None, None) => String::new(),
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.as_str().map_or_else(|| v.to_string(), str::to_string)))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// A calendar in one line: its hours, and how many holidays and make-up days it lists.
fn calendar_summary(spec: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(Value::Object(hours)) = spec.get("hours") {
        for (days, ranges) in hours {
            let ranges: Vec<&str> =
                ranges.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            parts.push(format!("{days} {}", ranges.join(",")));
        }
    }
    let mut text = parts.join("; ");
    for (key, word) in [("holidays", "holiday(s)"), ("workdays", "make-up day(s)")] {
        if let Some(n) = spec.get(key).and_then(Value::as_array).map(Vec::len).filter(|n| *n > 0) {
            let _ = write!(text, "; {n} {word}");
        }
    }
    text
}

/// The deviations as a table for people: one block per dealer, most severe first. `dealers`
/// lists every dealer to show, so that a faithful one is shown too.
pub fn render_table(pack: &Pack, dealers: &[String], deviations: &[Deviation]) -> String {
    const HEADERS: [&str; 6] = ["SEVERITY", "PROCESS", "KIND", "WHAT", "STANDARD", "DEALER"];
    let mut out = String::new();
    for (n, dealer) in dealers.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let mine: Vec<&Deviation> = deviations.iter().filter(|d| &d.dealer == dealer).collect();
        if mine.is_empty() {
            let _ = writeln!(out, "dealer {dealer}: no deviations from {} {}", pack.id(), pack.version);
            continue;
        }
        let count = |s: Severity| mine.iter().filter(|d| d.severity == s).count();
        let _ = writeln!(
            out,
            "dealer {dealer}: {} deviation(s) from {} {} ({} major, {} minor, {} info)",
            mine.len(),
            pack.id(),
            pack.version,
            count(Severity::Major),
            count(Severity::Minor),
            count(Severity::Info)
        );
        let rows: Vec<[String; 6]> = mine
            .iter()
            .map(|d| {
                [
                    d.severity.as_str().to_string(),
                    d.process.clone().unwrap_or_else(|| "(pack)".into()),
                    d.kind.as_str().to_string(),
                    cell(&d.path),
                    cell(&d.standard),
                    cell(&d.dealer_value),
                ]
            })
            .collect();
        let mut widths = HEADERS.map(width);
        for row in &rows {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(c));
            }
        }
        let line = |cells: [&str; 6]| {
            let mut l = String::new();
            for (i, c) in cells.iter().enumerate() {
                l.push_str("  ");
                l.push_str(c);
                if i + 1 < cells.len() {
                    l.push_str(&" ".repeat(widths[i] - width(c)));
                }
            }
            l.push('\n');
            l
        };
        out.push_str(&line(HEADERS));
        for row in &rows {
            out.push_str(&line([&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]]));
        }
    }
    out
}

/// A cell's text, cut at a width a terminal row can hold.
fn cell(text: &str) -> String {
    const MAX: usize = 64;
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if width(&one_line) <= MAX {
        return one_line;
    }
    let mut out = String::new();
    for c in one_line.chars() {
        if width(&out) + char_width(c) > MAX - 1 {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

/// The columns a text takes in a terminal: Chinese characters take two.
fn width(text: &str) -> usize {
    text.chars().map(char_width).sum()
}

fn char_width(c: char) -> usize {
    let wide = matches!(u32::from(c),
        0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6 | 0x20000..=0x3FFFD);
    if wide { 2 } else { 1 }
}
