//! The state of one running instance: where its tokens stand, its open tasks, armed timers,
//! pending actions, joins and incidents, and its data.
//!
//! This is the whole state the core needs; the runtime stores it as one snapshot per instance
//! (plus projections of tasks and timers into indexed tables for the inbox and the timer
//! wheel). Ids of tasks, timers, jobs and child instances are derived from the instance id and a
//! counter kept here, so that replaying the same inputs yields the same ids.

use std::collections::BTreeMap;

use jiff::Timestamp;
use model::{Label, Priority, StepIdx};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A running (or ended) instance of a process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// The instance id (given by the runtime at start).
    pub id: String,
    /// The process id.
    pub process: String,
    /// The process version number.
    pub process_version: u32,
    /// The content hash of the process definition the instance runs on; it never changes.
    pub process_hash: String,
    /// The dealer (tenant) the instance belongs to.
    pub dealer: String,
    /// A business key such as the plate number or repair-order number.
    pub business_key: Option<String>,
    /// Running, or ended with an outcome.
    pub status: Status,
    /// The instance data: declared variables and step outputs.
    pub data: Map<String, Value>,
    /// Who last completed each task step: step id -> user id.
    pub done_by: BTreeMap<String, String>,
    /// Where the instance stands: one token per active path.
    pub tokens: Vec<Token>,
    /// Open tasks.
    pub tasks: Vec<Task>,
    /// Armed timers.
    pub timers: Vec<Timer>,
    /// Actions invoked and not yet answered.
    pub jobs: Vec<Job>,
    /// Parallel splits waiting for their branches.
    pub joins: Vec<JoinState>,
    /// Open incidents.
    pub incidents: Vec<Incident>,
    /// The parent instance, if a subprocess step started this one.
    pub parent: Option<ParentLink>,
    /// Instances this one started.
    pub children: Vec<ChildLink>,
    /// When it started.
    pub started_at: Timestamp,
    /// Counter for derived ids.
    pub seq: u64,
    /// Incremented by every transition; the store uses it for optimistic concurrency.
    pub revision: u64,
}

impl Instance {
    /// Whether the instance has ended.
    pub fn is_ended(&self) -> bool {
        matches!(self.status, Status::Ended { .. })
    }

    /// A task by id.
    pub fn task(&self, id: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.id == id)
    }

    /// A token by id.
    pub fn token(&self, id: u64) -> Option<&Token> {
        self.tokens.iter().find(|t| t.id == id)
    }

    pub(crate) fn next_id(&mut self, prefix: char) -> String {
        self.seq += 1;
        format!("{}-{prefix}{}", self.id, self.seq)
    }

    pub(crate) fn next_token_id(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

/// Whether an instance runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Status {
    /// Running.
    Running,
    /// Ended.
    Ended {
        /// How: `completed`, `cancelled`, `rejected`, ...
        outcome: String,
        /// When.
        at: Timestamp,
    },
}

/// One active path through the process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    /// The token id (unique within the instance).
    pub id: u64,
    /// The step it stands at.
    pub step: StepIdx,
    /// When it entered the step.
    pub entered_at: Timestamp,
    /// The parallel branch it belongs to, if any.
    pub fork: Option<Fork>,
    /// What it waits for.
    pub wait: Wait,
}

/// Membership of a parallel branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fork {
    /// The join state.
    pub join: u64,
    /// The branch's position in the split.
    pub branch: usize,
}

/// What a token waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum Wait {
    /// Nothing yet: the token is being moved into its step.
    Entering,
    /// A task to be completed.
    Task {
        /// The task id.
        task: String,
    },
    /// An action's result.
    Job {
        /// The job id.
        job: String,
    },
    /// A message.
    Message {
        /// Its name.
        name: String,
        /// Its correlation key.
        key: Option<String>,
    },
    /// A child instance to end.
    Child {
        /// The child's id.
        child: String,
    },
    /// A timer (a wait step).
    Timer {
        /// The timer id.
        timer: String,
    },
    /// The other branches of a parallel split.
    Join {
        /// The join state.
        join: u64,
    },
    /// An administrator, because of an incident.
    Incident {
        /// The incident id.
        incident: String,
    },
}

/// A task open in the inbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// The task id.
    pub id: String,
    /// The step id.
    pub step: String,
    /// The token it belongs to.
    pub token: u64,
    /// For a side task: the timer that opened it.
    pub timer: Option<String>,
    /// What to do.
    pub title: Label,
    /// The candidate roles.
    pub roles: Vec<String>,
    /// Who has it (claimed, assigned or delegated).
    pub assignee: Option<String>,
    /// How urgent.
    pub priority: Priority,
    /// When it is due.
    pub due_at: Option<Timestamp>,
    /// When it opened.
    pub created_at: Timestamp,
    /// The form's name, if it is a named form.
    pub form: Option<String>,
}

/// An armed timer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timer {
    /// The timer id.
    pub id: String,
    /// When it is due to fire.
    pub fire_at: Timestamp,
    /// The token it belongs to.
    pub token: Option<u64>,
    /// What it is.
    pub kind: TimerKind,
}

/// What a timer is for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimerKind {
    /// A timer declared on a step.
    Step {
        /// The timer's id in the definition.
        def: String,
        /// How often it has fired.
        fired: u32,
    },
    /// The end of a wait step.
    Wait,
    /// The next try of an action.
    Retry {
        /// The job.
        job: String,
    },
    /// A task's due time: firing records the SLA breach.
    Due {
        /// The task.
        task: String,
    },
}

/// An action invocation awaiting its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The job id; with the attempt number it is the idempotency key.
    pub id: String,
    /// The token waiting for it (none for notifications from timers).
    pub token: Option<u64>,
    /// The action.
    pub action: String,
    /// The input.
    pub input: Value,
    /// The try number, from 1.
    pub attempt: u32,
    /// The step or timer that invoked it.
    pub origin: String,
}

/// The progress of a parallel split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinState {
    /// The id.
    pub id: u64,
    /// The parallel step.
    pub split: StepIdx,
    /// The join step.
    pub join: StepIdx,
    /// The branches that arrived, by position.
    pub arrived: Vec<usize>,
    /// The fork the split itself belonged to (for nested splits).
    pub outer: Option<Fork>,
}

/// Something an administrator must look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// The id.
    pub id: String,
    /// The step where it happened.
    pub step: String,
    /// The token held up, if any.
    pub token: Option<u64>,
    /// What kind of failure.
    pub kind: IncidentKind,
    /// What happened, in words.
    pub message: String,
    /// When.
    pub at: Timestamp,
    /// What a retry does.
    pub resume: Resume,
}

/// The kind of an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// A guard or expression failed or hit a limit.
    Expression,
    /// An action failed after its last try.
    Action,
    /// The data no longer fits the data schema.
    Data,
    /// The flow looped without waiting.
    Loop,
    /// A token reached a join it does not belong to.
    Flow,
}

/// What retrying an incident does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resume {
    /// Enter the step again.
    Enter,
    /// Apply the step's output mapping again and go on.
    Exit,
    /// Nothing to redo (e.g. a failed notification); retrying just closes the incident.
    Nothing,
    /// Invoke the job again.
    Job {
        /// The failed job.
        job: String,
    },
}

/// The link to a parent instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentLink {
    /// The parent's id.
    pub instance: String,
    /// The parent's subprocess step.
    pub step: String,
}

/// The link to a child instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildLink {
    /// The child's id.
    pub instance: String,
    /// The child's process.
    pub process: String,
    /// The subprocess step that started it.
    pub step: String,
    /// Whether it ended, and how.
    pub outcome: Option<String>,
}
