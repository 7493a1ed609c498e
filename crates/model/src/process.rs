//! The validated process: what the execution core runs.
//!
//! A [`Process`] can only be built by the validator, so holding one means every reference
//! resolves, every guard compiled against the declared variables, every form is a compiled JSON
//! Schema and every duration parsed. Steps are addressed by [`StepIdx`] (an index), never by
//! looking up a string at run time.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use calendar::Calendar;
use jiff::SignedDuration;
use serde_json::Value;

use crate::raw::{Label, Source};

/// The index of a step in [`Process::steps`]; stable for a given definition document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct StepIdx(pub u32);

impl StepIdx {
    /// As a `usize` for indexing.
    pub fn get(self) -> usize {
        self.0 as usize
    }
}

/// The SHA-256 of a process's definition document, hex encoded: its identity once deployed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentHash(pub String);

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ContentHash {
    /// The first 12 hex digits, enough to tell versions apart in a trace.
    pub fn short(&self) -> &str {
        self.0.get(..12).unwrap_or(&self.0)
    }
}

/// A validated process definition.
#[derive(Debug)]
pub struct Process {
    /// The process id.
    pub id: String,
    /// The owner's revision number.
    pub version: u32,
    /// The hash of [`Process::document`].
    pub hash: ContentHash,
    /// The self-contained definition this process was built from (process, forms, calendars,
    /// roles): what the store keeps, and what rebuilds the process after a restart.
    pub document: Value,
    /// The pack the process came from.
    pub pack: Option<PackRef>,
    /// The title.
    pub title: Label,
    /// The description.
    pub description: Option<Label>,
    /// The roles it uses, with their names from the role catalogue.
    pub roles: BTreeMap<String, Label>,
    /// Parameter values (defaults, or a dealer's overrides).
    pub params: BTreeMap<String, ParamValue>,
    /// The instance data's schema.
    pub data: DataSchema,
    /// What expressions may read, with shapes; also tells the core which variables exist.
    pub vars: script::Vars,
    /// The calendar used when a step names none.
    pub default_calendar: Arc<Calendar>,
    /// The named calendars.
    pub calendars: BTreeMap<String, Arc<Calendar>>,
    /// The first step.
    pub start: StepIdx,
    /// The steps.
    pub steps: Vec<Step>,
    /// The sandbox the expressions were compiled in; they are evaluated in it too.
    pub sandbox: Arc<script::Sandbox>,
}

impl Process {
    /// A step by index.
    pub fn step(&self, idx: StepIdx) -> &Step {
        &self.steps[idx.get()]
    }

    /// A step's index by id.
    pub fn step_idx(&self, id: &str) -> Option<StepIdx> {
        self.steps.iter().position(|s| s.id == id).map(|i| StepIdx(i as u32))
    }

    /// A timer by id, with the step it belongs to.
    pub fn timer(&self, id: &str) -> Option<(StepIdx, &TimerDef)> {
        self.steps
            .iter()
            .enumerate()
            .find_map(|(i, s)| s.kind.timers().iter().find(|t| t.id == id).map(|t| (StepIdx(i as u32), t)))
    }
}

/// The pack a process came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackRef {
    /// The pack id.
    pub id: String,
    /// The pack version.
    pub version: String,
}

/// A parameter's kind and effective value.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamValue {
    /// The kind.
    pub kind: crate::raw::ParameterKind,
    /// The value, as JSON (a duration as its ISO 8601 text).
    pub value: Value,
}

/// The instance data's schema, compiled.
#[derive(Debug, Clone)]
pub struct DataSchema {
    /// The schema as written.
    pub schema: Value,
    /// The compiled validator.
    pub validator: Arc<jsonschema::Validator>,
}

/// A step.
#[derive(Debug)]
pub struct Step {
    /// The stable id.
    pub id: String,
    /// The title; for untitled automatic steps, empty.
    pub title: Label,
    /// Where the step comes from in the source documents.
    pub source: Option<Source>,
    /// What the step does.
    pub kind: StepKind,
}

/// What a step does.
#[derive(Debug)]
pub enum StepKind {
    /// Work for a person.
    Task {
        /// The task.
        task: TaskDef,
        /// Timers while it is open.
        timers: Vec<TimerDef>,
        /// Output mapping.
        set: Vec<Assign>,
        /// The next step.
        next: StepIdx,
    },
    /// An automatic step.
    Action {
        /// The action's name.
        action: String,
        /// Its input.
        input: Vec<Assign>,
        /// The retry policy.
        retry: RetryPolicy,
        /// Where to go after the last failure (else an incident).
        on_failure: Option<StepIdx>,
        /// Timers while it runs.
        timers: Vec<TimerDef>,
        /// Output mapping.
        set: Vec<Assign>,
        /// The next step.
        next: StepIdx,
    },
    /// A choice.
    Decision {
        /// The branches in order.
        branches: Vec<BranchDef>,
        /// The default.
        default: StepIdx,
    },
    /// A split.
    Parallel {
        /// The first step of each branch.
        branches: Vec<StepIdx>,
        /// The join that waits for them.
        join: StepIdx,
    },
    /// A join.
    Join {
        /// The split.
        of: StepIdx,
        /// How many branches must arrive (`None`: all).
        wait_for: Option<u32>,
        /// Stops early when true.
        abort_when: Option<script::Expr>,
        /// Where to go when stopped early.
        on_abort: Option<StepIdx>,
        /// Output mapping.
        set: Vec<Assign>,
        /// The next step.
        next: StepIdx,
    },
    /// A wait for a moment.
    Wait {
        /// When the wait ends.
        until: Moment,
        /// Output mapping.
        set: Vec<Assign>,
        /// The next step.
        next: StepIdx,
    },
    /// A wait for a message.
    Receive {
        /// The message name.
        message: String,
        /// The correlation key.
        key: Option<script::Expr>,
        /// Timers while waiting.
        timers: Vec<TimerDef>,
        /// Output mapping.
        set: Vec<Assign>,
        /// The next step.
        next: StepIdx,
    },
    /// A message sent.
    Send {
        /// The message name.
        message: String,
        /// The correlation key.
        key: Option<script::Expr>,
        /// The payload.
        payload: Vec<Assign>,
        /// The next step.
        next: StepIdx,
    },
    /// Another process started.
    Subprocess {
        /// Its id.
        process: String,
        /// Its start data.
        input: Vec<Assign>,
        /// Its business key.
        business_key: Option<script::Expr>,
        /// Wait for it to end.
        wait: bool,
        /// Timers while waiting.
        timers: Vec<TimerDef>,
        /// Output mapping.
        set: Vec<Assign>,
        /// The next step.
        next: StepIdx,
    },
    /// The end.
    End {
        /// The outcome.
        outcome: String,
        /// Data for a waiting parent.
        result: Vec<Assign>,
    },
}

impl StepKind {
    /// The step kind's name as written in YAML (`task`, `decision`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Task { .. } => "task",
            StepKind::Action { .. } => "action",
            StepKind::Decision { .. } => "decision",
            StepKind::Parallel { .. } => "parallel",
            StepKind::Join { .. } => "join",
            StepKind::Wait { .. } => "wait",
            StepKind::Receive { .. } => "receive",
            StepKind::Send { .. } => "send",
            StepKind::Subprocess { .. } => "subprocess",
            StepKind::End { .. } => "end",
        }
    }

    /// The timers attached to the step.
    pub fn timers(&self) -> &[TimerDef] {
        match self {
            StepKind::Task { timers, .. }
            | StepKind::Action { timers, .. }
            | StepKind::Receive { timers, .. }
            | StepKind::Subprocess { timers, .. } => timers,
            _ => &[],
        }
    }

    /// Every transition out of the step, with a name for each (for graphs and coverage).
    pub fn edges(&self) -> Vec<Edge> {
        let mut edges = Vec::new();
        let mut push = |kind: EdgeKind, to: StepIdx| edges.push(Edge { kind, to });
        match self {
            StepKind::Task { next, .. }
            | StepKind::Wait { next, .. }
            | StepKind::Receive { next, .. }
            | StepKind::Send { next, .. }
            | StepKind::Subprocess { next, .. } => push(EdgeKind::Next, *next),
            StepKind::Action { next, on_failure, .. } => {
                push(EdgeKind::Next, *next);
                if let Some(f) = on_failure {
                    push(EdgeKind::OnFailure, *f);
                }
            }
            StepKind::Decision { branches, default } => {
                for (i, b) in branches.iter().enumerate() {
                    push(EdgeKind::Branch(i), b.next);
                }
                push(EdgeKind::Default, *default);
            }
            StepKind::Parallel { branches, .. } => {
                for (i, b) in branches.iter().enumerate() {
                    push(EdgeKind::Fork(i), *b);
                }
            }
            StepKind::Join { next, on_abort, .. } => {
                push(EdgeKind::Next, *next);
                if let Some(a) = on_abort {
                    push(EdgeKind::Abort, *a);
                }
            }
            StepKind::End { .. } => {}
        }
        for (i, t) in self.timers().iter().enumerate() {
            if let Some(g) = t.goto {
                push(EdgeKind::Timer(i), g);
            }
        }
        edges
    }
}

/// A transition out of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Edge {
    /// Which way out.
    pub kind: EdgeKind,
    /// To which step.
    pub to: StepIdx,
}

/// Which way out of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EdgeKind {
    /// `next`.
    Next,
    /// A decision branch, by position.
    Branch(usize),
    /// A decision's default.
    Default,
    /// A parallel branch, by position.
    Fork(usize),
    /// A join's early stop.
    Abort,
    /// An action's `on_failure`.
    OnFailure,
    /// A timer's `goto`, by the timer's position on the step.
    Timer(usize),
}

/// Work for a person: what the inbox shows.
#[derive(Debug)]
pub struct TaskDef {
    /// The title.
    pub title: Label,
    /// The description.
    pub description: Option<Label>,
    /// The candidate roles.
    pub roles: Vec<String>,
    /// Who gets it directly.
    pub assignee: Option<script::Expr>,
    /// The form.
    pub form: Option<Form>,
    /// The priority.
    pub priority: PriorityRule,
    /// The due time.
    pub due: Option<Moment>,
}

/// A compiled form.
#[derive(Debug, Clone)]
pub struct Form {
    /// The file name under `schemas/forms/`, if it is not inline.
    pub name: Option<String>,
    /// The JSON Schema (with `additionalProperties: false` at the top, so unknown fields are
    /// refused).
    pub schema: Value,
    /// The compiled validator.
    pub validator: Arc<jsonschema::Validator>,
}

/// A task priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Low.
    Low,
    /// Normal, the default.
    Normal,
    /// High.
    High,
    /// Urgent (e.g. the emergency fast lane).
    Urgent,
}

impl Priority {
    /// Parses `low`, `normal`, `high` or `urgent`.
    pub fn parse(s: &str) -> Option<Priority> {
        Some(match s {
            "low" => Priority::Low,
            "normal" => Priority::Normal,
            "high" => Priority::High,
            "urgent" => Priority::Urgent,
            _ => return None,
        })
    }

    /// The word.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

/// A priority, fixed or computed.
#[derive(Debug)]
pub enum PriorityRule {
    /// Fixed.
    Fixed(Priority),
    /// Computed by an expression giving one of the words.
    Expr(script::Expr),
}

/// A moment, relative to entering a step.
#[derive(Debug)]
pub enum Moment {
    /// A duration after entering.
    After {
        /// How long.
        duration: DurationRule,
        /// Counted in this calendar's working time (`None`: plain clock time).
        calendar: Option<Arc<Calendar>>,
    },
    /// An absolute moment computed from the data.
    At {
        /// Gives a timestamp.
        expr: script::Expr,
        /// Moved to this calendar's next open moment.
        calendar: Option<Arc<Calendar>>,
    },
    /// The due time of the step's task.
    AtDue,
}

/// A duration, fixed or computed.
#[derive(Debug)]
pub enum DurationRule {
    /// Fixed.
    Fixed(SignedDuration),
    /// Computed by an expression giving a duration.
    Expr(script::Expr),
}

/// A timer.
#[derive(Debug)]
pub struct TimerDef {
    /// The id.
    pub id: String,
    /// What it is for.
    pub title: Option<Label>,
    /// When it first fires.
    pub first: Moment,
    /// For recurring timers: the period, and the calendar it is counted in.
    pub every: Option<(SignedDuration, Option<Arc<Calendar>>)>,
    /// For recurring timers: the most firings.
    pub max_times: Option<u32>,
    /// Armed only while true.
    pub when: Option<script::Expr>,
    /// Notification input.
    pub notify: Option<Vec<Assign>>,
    /// Another action.
    pub invoke: Option<(String, Vec<Assign>)>,
    /// Escalation of the step's task.
    pub escalate: Option<EscalateDef>,
    /// A side task.
    pub open_task: Option<(TaskDef, Vec<Assign>)>,
    /// Variables to set.
    pub set: Vec<Assign>,
    /// Interrupting: where to go.
    pub goto: Option<StepIdx>,
}

/// An escalation.
#[derive(Debug)]
pub struct EscalateDef {
    /// Roles added.
    pub add_roles: Vec<String>,
    /// Reassignment.
    pub assignee: Option<AssigneeRule>,
    /// New priority.
    pub priority: Option<Priority>,
}

/// A reassignment.
#[derive(Debug)]
pub enum AssigneeRule {
    /// Back to the pool.
    Nobody,
    /// To the user an expression gives.
    Expr(script::Expr),
}

/// A decision branch.
#[derive(Debug)]
pub struct BranchDef {
    /// The guard.
    pub guard: script::Expr,
    /// Where it leads.
    pub next: StepIdx,
    /// Its name.
    pub label: Option<Label>,
}

/// A retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all.
    pub max_attempts: u32,
    /// The first wait.
    pub backoff: SignedDuration,
    /// The longest wait.
    pub max_backoff: SignedDuration,
}

impl RetryPolicy {
    /// The wait after the `attempt`-th failed try (1-based): the backoff doubled per try, capped.
    pub fn delay_after(&self, attempt: u32) -> SignedDuration {
        let factor = 1_i32.checked_shl(attempt.saturating_sub(1).min(20)).unwrap_or(i32::MAX);
        let delay = self.backoff.checked_mul(factor).unwrap_or(self.max_backoff);
        delay.min(self.max_backoff)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            backoff: SignedDuration::from_secs(10),
            max_backoff: SignedDuration::from_mins(10),
        }
    }
}

/// A value to compute: an output mapping entry, an action input field, a payload field.
#[derive(Debug)]
pub struct Assign {
    /// The variable or field name.
    pub name: String,
    /// The value.
    pub value: ValueRule,
}

/// A literal, an expression, or a structure with expressions inside.
#[derive(Debug)]
pub enum ValueRule {
    /// Taken as written.
    Literal(Value),
    /// Computed.
    Expr(script::Expr),
    /// A list or record whose members are computed where they are written with `=`
    /// (`data: { plate_no: =plate_no }`): the literal parts, and each expression with the JSON
    /// pointer where its value goes.
    Nested(Value, Vec<(String, script::Expr)>),
}
