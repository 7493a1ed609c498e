//! Checks a process's `policy:` (what dealers' overlays may change) against its steps.
//!
//! The policy is headquarters' promise to dealers and the rule overlays are held to, so a
//! policy that names a step that does not exist, or marks a decision optional, is refused
//! when the pack is validated rather than discovered when the first dealer tries it. What an
//! overlay does with the policy is the `packs` crate's business; this module only makes sure
//! the policy means something.

use std::collections::BTreeSet;

use super::locate::{Sink, Where};
use crate::diagnostic::{Code, did_you_mean};
use crate::raw::{self, Policy};
use crate::yaml::Path;

/// The parts of a step that can be locked one by one.
pub const LOCKABLE_PARTS: [&str; 3] = ["due", "title", "guards"];

/// Whether a dealer may disable a step of this kind: it must have exactly one way on (`next`)
/// that its predecessors can be re-linked to.
pub fn can_be_optional(step: &raw::Step) -> bool {
    matches!(
        step,
        raw::Step::Task(_)
            | raw::Step::Action(_)
            | raw::Step::Wait(_)
            | raw::Step::Receive(_)
            | raw::Step::Send(_)
            | raw::Step::Subprocess(_)
    )
}

/// Whether dealers' steps may be inserted after a step of this kind: it must go on to exactly
/// one step, between which and it the inserted steps run.
pub fn can_be_extended(step: &raw::Step) -> bool {
    can_be_optional(step) || matches!(step, raw::Step::Join(_))
}

/// Reports every problem of a process's policy. `root` is the document path of the process.
pub(super) fn check(process: &raw::Process, root: &Path, sink: &mut Sink<'_>) {
    let Some(policy) = &process.policy else { return };
    let base = root.key("policy");
    check_locked(process, policy, &base, sink);
    check_optional(process, policy, &base, sink);
    check_extension_points(process, policy, &base, sink);
}

fn check_locked(process: &raw::Process, policy: &Policy, base: &Path, sink: &mut Sink<'_>) {
    let mut seen = BTreeSet::new();
    for (i, target) in policy.locked.iter().enumerate() {
        let path = base.key("locked").index(i);
        if !seen.insert(target.as_str()) {
            sink.report(Code::DuplicateId, Where::Value(path), format!("`{target}` is locked twice"), None);
            continue;
        }
        if target == "title" {
            continue;
        }
        let (step_id, part) = match target.split_once('.') {
            Some((s, p)) => (s, Some(p)),
            None => (target.as_str(), None),
        };
        let Some(step) = process.steps.get(step_id) else {
            unknown_step(process, step_id, path, sink);
            continue;
        };
        let Some(part) = part else { continue };
        let fits = match part {
            "title" => true,
            "due" => matches!(step, raw::Step::Task(_)),
            "guards" => matches!(step, raw::Step::Decision(_)),
            other => {
                let hint = did_you_mean(other, LOCKABLE_PARTS).map_or_else(
                    || "write a step id alone, or `<step>.due`, `<step>.title` or `<step>.guards`".to_string(),
                    |m| format!("did you mean `{step_id}.{m}`?"),
                );
                sink.report(
                    Code::BadPolicy,
                    Where::Value(path),
                    format!("`{other}` is not a part of a step that can be locked"),
                    Some(hint),
                );
                continue;
            }
        };
        if !fits {
            let what = if part == "due" { "only a task has a due time" } else { "only a decision has guards" };
            sink.report(
                Code::BadPolicy,
                Where::Value(path),
                format!("`{target}` cannot be locked: {what}, and `{step_id}` is {}", kind(step)),
                Some(format!("lock the whole step with `{step_id}`")),
            );
        }
    }
}

fn check_optional(process: &raw::Process, policy: &Policy, base: &Path, sink: &mut Sink<'_>) {
    let mut seen = BTreeSet::new();
    for (i, id) in policy.optional.iter().enumerate() {
        let path = base.key("optional").index(i);
        if !seen.insert(id.as_str()) {
            sink.report(Code::DuplicateId, Where::Value(path), format!("`{id}` is listed twice"), None);
            continue;
        }
        let Some(step) = process.steps.get(id) else {
            unknown_step(process, id, path, sink);
            continue;
        };
        if policy.locked.iter().any(|l| l == id) {
            sink.report(
                Code::BadPolicy,
                Where::Value(path),
                format!("the step `{id}` is both locked and optional"),
                Some("a locked step is mandatory; remove it from one of the two lists".into()),
            );
        } else if !can_be_optional(step) {
            sink.report(
                Code::BadPolicy,
                Where::Value(path),
                format!("{} cannot be optional: disabling `{id}` would leave no single step to go on to", kind(step)),
                Some("only tasks, actions, waits, receives, sends and subprocesses can be disabled".into()),
            );
        }
    }
}

fn check_extension_points(process: &raw::Process, policy: &Policy, base: &Path, sink: &mut Sink<'_>) {
    for (name, point) in &policy.extension_points {
        let path = base.key("extension_points").key(name.clone());
        let snake = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !snake {
            sink.report(
                Code::BadId,
                Where::Key(path.clone()),
                format!("the extension point id `{name}` is not snake_case"),
                Some("ids use lower-case letters, digits and underscores, and start with a letter".into()),
            );
        }
        let Some(step) = process.steps.get(&point.after) else {
            unknown_step(process, &point.after, path.key("after"), sink);
            continue;
        };
        if !can_be_extended(step) {
            sink.report(
                Code::BadPolicy,
                Where::Value(path.key("after")),
                format!(
                    "steps cannot be inserted after `{}`: {} does not go on to one single step",
                    point.after,
                    kind(step)
                ),
                Some("name a task, action, wait, receive, send, subprocess or join step".into()),
            );
        }
    }
}

fn unknown_step(process: &raw::Process, id: &str, path: Path, sink: &mut Sink<'_>) {
    let hint = did_you_mean(id, process.steps.keys().map(String::as_str)).map(|m| format!("did you mean `{m}`?"));
    sink.report(
        Code::UnknownStep,
        Where::Value(path),
        format!("the policy names the step `{id}`, which does not exist"),
        hint,
    );
}

fn kind(step: &raw::Step) -> &'static str {
    match step {
        raw::Step::Task(_) => "a task",
        raw::Step::Action(_) => "an action",
        raw::Step::Decision(_) => "a decision",
        raw::Step::Parallel(_) => "a parallel step",
        raw::Step::Join(_) => "a join",
        raw::Step::Wait(_) => "a wait",
        raw::Step::Receive(_) => "a receive step",
        raw::Step::Send(_) => "a send step",
        raw::Step::Subprocess(_) => "a subprocess step",
        raw::Step::End(_) => "an end",
    }
}
