//! Checks on the shape of the flow: every step reachable from the start, an end reachable from
//! every step, every parallel branch arriving at its join.

use std::collections::VecDeque;

use super::locate::{Sink, Where};
use crate::diagnostic::Code;
use crate::process::{Process, StepIdx, StepKind};
use crate::yaml::Path;

/// Reports flow problems of a compiled process. `root` is the document path of the process.
pub fn check(process: &Process, root: &Path, sink: &mut Sink<'_>) {
    let n = process.steps.len();
    let successors: Vec<Vec<StepIdx>> =
        process.steps.iter().map(|s| s.kind.edges().iter().map(|e| e.to).collect()).collect();
    let step_path = |idx: StepIdx| root.key("steps").key(process.step(idx).id.clone());

    let reachable = reach(n, &[process.start], |i| successors[i.get()].clone(), None);
    for (i, step) in process.steps.iter().enumerate() {
        if !reachable[i] {
            sink.report(
                Code::UnreachableStep,
                Where::Key(step_path(StepIdx(i as u32))),
                format!(
                    "no path from the start (`{}`) leads to the step `{}`",
                    process.step(process.start).id,
                    step.id
                ),
                Some("connect it with a `next`, a branch or a timer's `goto`, or remove it".into()),
            );
        }
    }

    let mut predecessors: Vec<Vec<StepIdx>> = vec![Vec::new(); n];
    for (from, succ) in successors.iter().enumerate() {
        for to in succ {
            predecessors[to.get()].push(StepIdx(from as u32));
        }
    }
    let ends: Vec<StepIdx> =
        (0..n).filter(|&i| matches!(process.steps[i].kind, StepKind::End { .. })).map(|i| StepIdx(i as u32)).collect();
    let finishes = reach(n, &ends, |i| predecessors[i.get()].clone(), None);
    for (i, step) in process.steps.iter().enumerate() {
        if reachable[i] && !finishes[i] {
            sink.report(
                Code::NoEnd,
                Where::Key(step_path(StepIdx(i as u32))),
                format!("from the step `{}` no end can be reached: an instance that gets here never finishes", step.id),
                Some("every path must lead to a step of `type: end`; check loops for a way out".into()),
            );
        }
    }

    for (i, step) in process.steps.iter().enumerate() {
        let StepKind::Parallel { branches, join } = &step.kind else { continue };
        for (b, start) in branches.iter().enumerate() {
            let seen = reach(n, &[*start], |s| successors[s.get()].clone(), Some(*join));
            if !seen[join.get()] {
                sink.report(
                    Code::JoinMismatch,
                    Where::Value(step_path(StepIdx(i as u32)).key("branches").index(b)),
                    format!(
                        "the branch starting at `{}` never reaches the join `{}`",
                        process.step(*start).id,
                        process.step(*join).id
                    ),
                    Some("every branch of a parallel step must lead to its join (or end the instance)".into()),
                );
            }
        }
    }
}

/// Breadth-first search; `stop` is visited but not expanded.
fn reach(n: usize, from: &[StepIdx], next: impl Fn(StepIdx) -> Vec<StepIdx>, stop: Option<StepIdx>) -> Vec<bool> {
    let mut seen = vec![false; n];
    let mut queue: VecDeque<StepIdx> = from.iter().copied().collect();
    for s in from {
        seen[s.get()] = true;
    }
    while let Some(s) = queue.pop_front() {
        if Some(s) == stop {
            continue;
        }
        for t in next(s) {
            if !seen[t.get()] {
                seen[t.get()] = true;
                queue.push_back(t);
            }
        }
    }
    seen
}
