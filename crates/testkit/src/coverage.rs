//! Transition coverage: which ways out of which steps the scenarios took, read from the events
//! of their runs, and which they never took.

use std::collections::BTreeSet;
use std::sync::Arc;

use machine::Event;
use model::{EdgeKind, Process, StepKind};

use crate::world::World;

/// A transition: process, from-step, way out.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Transition {
    /// The process.
    pub process: String,
    /// The step left.
    pub from: String,
    /// Which way out.
    pub kind: EdgeKind,
    /// The step entered.
    pub to: String,
}

impl Transition {
    /// `from -> to (kind)`, for reports.
    pub fn describe(&self) -> String {
        let kind = match self.kind {
            EdgeKind::Next => "next".to_string(),
            EdgeKind::Branch(i) => format!("branch {}", i + 1),
            EdgeKind::Default => "default".to_string(),
            EdgeKind::Fork(i) => format!("parallel branch {}", i + 1),
            EdgeKind::Abort => "on_abort".to_string(),
            EdgeKind::OnFailure => "on_failure".to_string(),
            EdgeKind::Timer(i) => format!("timer {} goto", i + 1),
        };
        format!("{}: {} -> {} ({kind})", self.process, self.from, self.to)
    }
}

/// Every transition of a process.
pub fn all(process: &Process) -> BTreeSet<Transition> {
    let mut out = BTreeSet::new();
    for step in &process.steps {
        for e in step.kind.edges() {
            out.insert(Transition {
                process: process.id.clone(),
                from: step.id.clone(),
                kind: e.kind,
                to: process.step(e.to).id.clone(),
            });
        }
    }
    out
}

/// The transitions a world's runs took.
pub fn taken(world: &World, processes: &[Arc<Process>]) -> BTreeSet<Transition> {
    let mut out = BTreeSet::new();
    for l in &world.log {
        let Some(p) = processes.iter().find(|p| p.id == l.process) else { continue };
        let t = |from: &str, kind: EdgeKind, to: &str| Transition {
            process: p.id.clone(),
            from: from.into(),
            kind,
            to: to.into(),
        };
        match &l.event {
            Event::Decided { step, guards, to, default } => {
                let kind = if *default { EdgeKind::Default } else { EdgeKind::Branch(guards.len().saturating_sub(1)) };
                out.insert(t(step, kind, to));
            }
            Event::Forked { step, branches } => {
                for (i, b) in branches.iter().enumerate() {
                    out.insert(t(step, EdgeKind::Fork(i), b));
                }
            }
            Event::Joined { step, aborted: true, to, .. } => {
                out.insert(t(step, EdgeKind::Abort, to));
            }
            Event::Joined { step, aborted: false, to, .. } => {
                out.insert(t(step, EdgeKind::Next, to));
            }
            Event::Entered { step, from: Some(from), .. } => {
                let Some(from_idx) = p.step_idx(from) else { continue };
                let from_step = p.step(from_idx);
                // Decisions, splits and joins are recorded by their own events above.
                if matches!(
                    from_step.kind,
                    StepKind::Decision { .. } | StepKind::Parallel { .. } | StepKind::Join { .. }
                ) {
                    continue;
                }
                for e in from_step.kind.edges() {
                    if p.step(e.to).id == *step {
                        out.insert(t(from, e.kind, step));
                    }
                }
            }
            _ => {}
        }
    }
    out
}
