//! What goes into the core ([`Input`], [`Start`]) and what comes out ([`Transition`] with
//! [`Effect`]s and [`Event`]s, or a [`Rejection`]).

use jiff::Timestamp;
use model::{Label, Priority};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::instance::{Instance, ParentLink, Task, Timer};

/// A person acting, with the roles they hold in the instance's dealer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user id.
    pub id: String,
    /// The roles held.
    pub roles: Vec<String>,
}

impl User {
    /// A user with roles.
    pub fn new(id: impl Into<String>, roles: impl IntoIterator<Item = impl Into<String>>) -> User {
        User { id: id.into(), roles: roles.into_iter().map(Into::into).collect() }
    }

    /// The first of `candidates` the user holds.
    pub fn role_among<'a>(&self, candidates: &'a [String]) -> Option<&'a str> {
        candidates.iter().find(|c| self.roles.contains(c)).map(String::as_str)
    }
}

/// Who caused a change: recorded with every event in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Actor {
    /// A person, in a role.
    User {
        /// The user id.
        id: String,
        /// The role they acted in, if one applies.
        role: Option<String>,
    },
    /// The engine itself (a start by another process, a cascade).
    System,
    /// A timer.
    Timer,
    /// An action's result.
    Action {
        /// The action.
        name: String,
    },
    /// A message from outside or from another instance.
    Message,
}

/// Starting an instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    /// The new instance's id (made by the caller: the core makes no ids of its own).
    pub id: String,
    /// The dealer it belongs to.
    pub dealer: String,
    /// A business key.
    pub business_key: Option<String>,
    /// The start data; validated against the process's data schema.
    pub data: serde_json::Map<String, Value>,
    /// Who starts it.
    pub by: Actor,
    /// The parent, when a subprocess step starts it.
    pub parent: Option<ParentLink>,
}

/// Something that happens to a running instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A user takes a task.
    Claim {
        /// The task.
        task: String,
        /// Who.
        by: User,
    },
    /// A user gives a task back to the pool.
    Unclaim {
        /// The task.
        task: String,
        /// Who.
        by: User,
    },
    /// A user hands a task to another user who holds one of its roles.
    Delegate {
        /// The task.
        task: String,
        /// Who hands it over.
        by: User,
        /// To whom.
        to: User,
    },
    /// A user completes a task with its form.
    Complete {
        /// The task.
        task: String,
        /// Who.
        by: User,
        /// The form data.
        form: Value,
    },
    /// A message arrives.
    Message {
        /// Its name.
        name: String,
        /// Its correlation key.
        key: Option<String>,
        /// Its payload.
        payload: Value,
    },
    /// A timer is due.
    TimerFired {
        /// The timer id.
        timer: String,
    },
    /// An action succeeded.
    ActionSucceeded {
        /// The job.
        job: String,
        /// Its output.
        output: Value,
    },
    /// An action failed.
    ActionFailed {
        /// The job.
        job: String,
        /// What went wrong.
        error: String,
        /// Whether trying again may help.
        retryable: bool,
    },
    /// A child instance ended.
    ChildEnded {
        /// The child.
        child: String,
        /// Its outcome.
        outcome: String,
        /// Its result data.
        result: Value,
    },
    /// An administrator retries what failed.
    RetryIncident {
        /// The incident.
        incident: String,
        /// Who.
        by: User,
    },
    /// An administrator skips what failed and moves the token on.
    SkipIncident {
        /// The incident.
        incident: String,
        /// Who.
        by: User,
    },
    /// The instance is cancelled.
    Cancel {
        /// Who.
        by: Actor,
        /// Why.
        reason: String,
    },
}

/// The result of an accepted input.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The instance afterwards.
    pub instance: Instance,
    /// What the runtime must do, in order.
    pub effects: Vec<Effect>,
    /// What happened, for the audit trail and the trace.
    pub events: Vec<Event>,
}

/// What the core asks the runtime to do. The first group changes indexed projections in the
/// same transaction as the snapshot; the second is performed after commit, from the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// A task appeared in the inbox.
    TaskOpened {
        /// The task.
        task: Task,
    },
    /// A task changed (claimed, delegated, escalated).
    TaskChanged {
        /// The task afterwards.
        task: Task,
    },
    /// A task left the inbox.
    TaskClosed {
        /// The task id.
        task: String,
        /// Completed, or cancelled.
        completed: bool,
    },
    /// A timer was armed.
    TimerSet {
        /// The timer.
        timer: Timer,
    },
    /// A timer was disarmed (its step was left).
    TimerCancelled {
        /// The timer id.
        timer: String,
    },
    /// The instance now waits for a message.
    Subscribe {
        /// The message name.
        name: String,
        /// The correlation key.
        key: Option<String>,
    },
    /// The instance no longer waits for a message.
    Unsubscribe {
        /// The message name.
        name: String,
        /// The correlation key.
        key: Option<String>,
    },
    /// Invoke an action (from the outbox, after commit).
    Invoke {
        /// The job id.
        job: String,
        /// The action.
        action: String,
        /// The input.
        input: Value,
        /// The try number.
        attempt: u32,
        /// Unique per try: an action that sees it twice must act once.
        idempotency_key: String,
    },
    /// Start another instance (from the outbox).
    StartInstance {
        /// The new instance's id.
        id: String,
        /// Its process.
        process: String,
        /// Its start data.
        data: serde_json::Map<String, Value>,
        /// Its business key.
        business_key: Option<String>,
        /// The link back.
        parent: ParentLink,
    },
    /// Deliver a message to the instances waiting for it (from the outbox).
    SendMessage {
        /// The name.
        name: String,
        /// The key.
        key: Option<String>,
        /// The payload.
        payload: Value,
    },
    /// Tell the parent that this instance ended (from the outbox).
    NotifyParent {
        /// The parent.
        parent: String,
        /// This instance.
        child: String,
        /// How it ended.
        outcome: String,
        /// Its result.
        result: Value,
    },
    /// Cancel a child instance that is no longer waited for (from the outbox).
    CancelChild {
        /// The child.
        child: String,
    },
}

impl Effect {
    /// Whether the runtime performs this effect after commit (from the outbox) rather than in
    /// the transaction.
    pub fn is_outbox(&self) -> bool {
        matches!(
            self,
            Effect::Invoke { .. }
                | Effect::StartInstance { .. }
                | Effect::SendMessage { .. }
                | Effect::NotifyParent { .. }
                | Effect::CancelChild { .. }
        )
    }
}

/// Something that happened, with everything needed to explain it later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The instance started.
    Started {
        /// The process.
        process: String,
        /// Its version.
        version: u32,
        /// Its hash.
        hash: String,
        /// Who.
        by: Actor,
        /// The start data.
        data: Value,
    },
    /// A token entered a step.
    Entered {
        /// The step.
        step: String,
        /// Its kind.
        kind: String,
        /// The step the token came from (none at the start and for new parallel branches).
        from: Option<String>,
    },
    /// A task opened.
    TaskOpened {
        /// The task.
        task: String,
        /// The step (or timer, for a side task).
        step: String,
        /// The title.
        title: Label,
        /// Candidate roles.
        roles: Vec<String>,
        /// Assignee.
        assignee: Option<String>,
        /// Priority.
        priority: Priority,
        /// Due time.
        due_at: Option<Timestamp>,
    },
    /// A task was claimed.
    TaskClaimed {
        /// The task.
        task: String,
        /// Who.
        by: Actor,
    },
    /// A task went back to the pool.
    TaskUnclaimed {
        /// The task.
        task: String,
        /// Who.
        by: Actor,
    },
    /// A task was handed to someone else.
    TaskDelegated {
        /// The task.
        task: String,
        /// Who.
        by: Actor,
        /// To whom.
        to: String,
    },
    /// A task was completed.
    TaskCompleted {
        /// The task.
        task: String,
        /// The step (or timer).
        step: String,
        /// Who.
        by: Actor,
        /// The form data.
        form: Value,
        /// The due time it had.
        due_at: Option<Timestamp>,
        /// When it opened.
        created_at: Timestamp,
    },
    /// A task was cancelled because its step was left.
    TaskCancelled {
        /// The task.
        task: String,
        /// The step.
        step: String,
    },
    /// A task was escalated by a timer.
    TaskEscalated {
        /// The task.
        task: String,
        /// Roles added.
        add_roles: Vec<String>,
        /// New assignee (`None` for unchanged; `Some("")` for the pool).
        assignee: Option<String>,
        /// New priority.
        priority: Option<Priority>,
    },
    /// A decision was taken: every guard tried and its value.
    Decided {
        /// The step.
        step: String,
        /// Each guard tried: its source and its value.
        guards: Vec<(String, bool)>,
        /// The step taken.
        to: String,
        /// Whether the default was taken.
        default: bool,
    },
    /// A parallel split started its branches.
    Forked {
        /// The step.
        step: String,
        /// The first steps of the branches.
        branches: Vec<String>,
    },
    /// A branch arrived at a join.
    Arrived {
        /// The join step.
        step: String,
        /// The branch.
        branch: usize,
        /// How many have arrived.
        arrived: usize,
        /// How many are needed.
        needed: usize,
    },
    /// A join let the flow continue.
    Joined {
        /// The join step.
        step: String,
        /// Whether it stopped early because of `abort_when`.
        aborted: bool,
        /// The value of `abort_when`, if evaluated.
        guard: Option<(String, bool)>,
        /// Where the flow goes.
        to: String,
    },
    /// A variable was set.
    Set {
        /// The variable.
        name: String,
        /// Its new value.
        value: Value,
    },
    /// A timer was armed.
    TimerArmed {
        /// The timer id.
        timer: String,
        /// Its definition id (or `wait`, `retry`, `due`).
        def: String,
        /// When it fires.
        fire_at: Timestamp,
    },
    /// A timer fired.
    TimerFired {
        /// The timer id.
        timer: String,
        /// Its definition id.
        def: String,
        /// How late it fired, in seconds (after a restart, overdue timers fire at once).
        late_secs: i64,
    },
    /// A timer's guard was false, so it did nothing.
    TimerSkipped {
        /// The timer's definition id.
        def: String,
        /// The guard.
        guard: String,
    },
    /// A task's due time passed while it was open.
    SlaBreached {
        /// The task.
        task: String,
        /// The step.
        step: String,
        /// The due time.
        due_at: Timestamp,
    },
    /// An action was invoked.
    ActionInvoked {
        /// The job.
        job: String,
        /// The action.
        action: String,
        /// The try number.
        attempt: u32,
        /// The input.
        input: Value,
    },
    /// An action answered.
    ActionSucceeded {
        /// The job.
        job: String,
        /// The action.
        action: String,
        /// Its output.
        output: Value,
    },
    /// An action failed.
    ActionFailed {
        /// The job.
        job: String,
        /// The action.
        action: String,
        /// The error.
        error: String,
        /// When the next try is, if any.
        retry_at: Option<Timestamp>,
    },
    /// The instance waits for a message.
    Awaiting {
        /// The name.
        name: String,
        /// The key.
        key: Option<String>,
    },
    /// A message arrived.
    Received {
        /// The name.
        name: String,
        /// The key.
        key: Option<String>,
        /// The payload.
        payload: Value,
    },
    /// A message was sent.
    Sent {
        /// The name.
        name: String,
        /// The key.
        key: Option<String>,
    },
    /// A child instance was started.
    ChildStarted {
        /// The child.
        child: String,
        /// Its process.
        process: String,
    },
    /// A child instance ended.
    ChildEnded {
        /// The child.
        child: String,
        /// Its outcome.
        outcome: String,
    },
    /// An incident was raised.
    IncidentRaised {
        /// The incident.
        incident: String,
        /// The step.
        step: String,
        /// What happened.
        message: String,
    },
    /// An incident was resolved.
    IncidentResolved {
        /// The incident.
        incident: String,
        /// `retried` or `skipped`.
        how: String,
        /// Who.
        by: Actor,
    },
    /// The instance was cancelled.
    Cancelled {
        /// Who.
        by: Actor,
        /// Why.
        reason: String,
    },
    /// The instance ended.
    Ended {
        /// The outcome.
        outcome: String,
        /// The end step (none when cancelled).
        step: Option<String>,
    },
}

/// Why an input was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    /// The instance has ended.
    #[error("the instance has ended")]
    Ended,
    /// No such open task.
    #[error("there is no open task `{0}`")]
    NoSuchTask(String),
    /// The user holds none of the task's roles and it is not assigned to them.
    #[error("the task `{task}` is for the roles {roles:?}; you hold none of them")]
    NotCandidate {
        /// The task.
        task: String,
        /// Its roles.
        roles: Vec<String>,
    },
    /// Someone else has the task.
    #[error("the task `{task}` is already claimed by {assignee}")]
    ClaimedByOther {
        /// The task.
        task: String,
        /// Who has it.
        assignee: String,
    },
    /// The user does not have the task.
    #[error("the task `{0}` is not yours")]
    NotAssignee(String),
    /// The delegate holds none of the task's roles.
    #[error("{to} holds none of the roles {roles:?} of the task")]
    DelegateLacksRole {
        /// The intended delegate.
        to: String,
        /// The task's roles.
        roles: Vec<String>,
    },
    /// The form does not match the task's schema.
    #[error("the form has {} error(s)", .0.len())]
    InvalidForm(Vec<FieldError>),
    /// The start data does not match the data schema.
    #[error("the data has {} error(s)", .0.len())]
    InvalidData(Vec<FieldError>),
    /// No token waits for this message.
    #[error("no step of this instance waits for the message `{0}` with this key")]
    NotWaiting(String),
    /// The timer, job or child is not (or no longer) known: a stale input.
    #[error("`{0}` is not pending on this instance (already handled or cancelled)")]
    Stale(String),
    /// No such open incident.
    #[error("there is no open incident `{0}`")]
    NoSuchIncident(String),
}

/// One field's problem in a form or data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The field, as a JSON pointer (`/items/0/price`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}
