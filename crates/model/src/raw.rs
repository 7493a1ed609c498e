//! The process language as written: serde types that mirror a YAML file one to one.
//!
//! Nothing here is checked beyond its shape. The validator (`crate::validate`) turns these into
//! a [`crate::Process`], which has no `Deserialize`: a definition is either fully checked or it
//! does not exist. The doc comments on these types become the help text editors show, through
//! `schemas/process.schema.json` (generated from these types by `sopflow schema`, and kept equal
//! to them by a test).
//!
//! One rule holds everywhere a value may be computed: a string that starts with `=` is a Rhai
//! expression (`"=quotation.total * 0.9"`); anything else is taken literally.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

/// A process definition: one SOP, such as the service order from appointment to follow-up.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "sopflow process definition")]
pub struct Process {
    /// The process id, in snake_case, unique within its pack (e.g. `service_order`).
    pub process: String,
    /// The revision of this definition, a whole number counted up by its owner. The engine also
    /// identifies every deployed definition by the hash of its content.
    pub version: u32,
    /// The name of the process, in Chinese and English.
    pub title: Label,
    /// What the process is for, in Chinese and English.
    #[serde(default)]
    pub description: Option<Label>,
    /// Where the process comes from in the source documents (file and quote).
    #[serde(default)]
    pub source: Option<Source>,
    /// The roles that act in this process. Each must be in the pack's role catalogue.
    pub roles: Vec<String>,
    /// The business calendar that working-time durations use unless a step names another.
    #[serde(default)]
    pub calendar: Option<String>,
    /// Named values a dealer may override, with defaults and allowed ranges. Expressions read
    /// them as `params.<name>`.
    #[serde(default)]
    pub parameters: IndexMap<String, Parameter>,
    /// What a dealer's overlay may change: locked parts, optional steps and extension points.
    /// Without a policy, every step's due time, texts and guards are open to dealers, no step
    /// may be disabled and no step may be inserted.
    #[serde(default)]
    pub policy: Option<Policy>,
    /// The instance data: a JSON Schema of type `object`. Its top-level properties are the
    /// variables that guards and expressions may read and that `set:` may write.
    pub data: Value,
    /// The id of the first step.
    pub start: String,
    /// The steps, by id. The id is stable: dealer overlays, scenarios and the audit trail refer
    /// to it. A step's output (a task's form, an action's result, a message's payload) is stored
    /// in the instance data under the step's id.
    pub steps: IndexMap<String, Step>,
}

/// What dealers may change in a process through their overlays. Headquarters writes it beside
/// the steps it governs; overlay validation enforces it and the compliance report reads it.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The parts no dealer may change. A step id locks the whole step: its due time, texts and
    /// guards, and it can be neither disabled nor bypassed. `<step>.due`, `<step>.title` or
    /// `<step>.guards` lock one part of a step; `title` locks the process's own title.
    #[serde(default)]
    pub locked: Vec<String>,
    /// Steps a dealer may disable. A disabled step is taken out, and every path that led into
    /// it goes to the step's `next` instead.
    #[serde(default)]
    pub optional: Vec<String>,
    /// Named places where a dealer may insert steps of its own (e.g. a car wash before
    /// delivery), by id.
    #[serde(default)]
    pub extension_points: IndexMap<String, ExtensionPoint>,
}

/// A place where dealers may insert steps.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionPoint {
    /// The step after which a dealer's steps run; they run before the step that follows it.
    pub after: String,
    /// What belongs here, in Chinese and English.
    #[serde(default)]
    pub title: Option<Label>,
}

/// A text in Chinese and English. Both are expected; a missing one is a warning.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Label {
    /// Chinese.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zh: Option<String>,
    /// English.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub en: Option<String>,
}

impl Label {
    /// The text in a language (`zh` or `en`), falling back to the other one.
    pub fn text(&self, lang: &str) -> &str {
        let (first, second) = if lang == "zh" { (&self.zh, &self.en) } else { (&self.en, &self.zh) };
        first.as_deref().or(second.as_deref()).unwrap_or("")
    }
}

/// Where something comes from in the source documents: one reference or several, each written
/// as `<file id>「<verbatim quote>」`, e.g. `001「填寫預約登記表」`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Source {
    /// One reference.
    One(String),
    /// Several references.
    Many(Vec<String>),
}

impl Source {
    /// The references, one or many.
    pub fn refs(&self) -> Vec<&str> {
        match self {
            Source::One(s) => vec![s.as_str()],
            Source::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// A named value with a default that a dealer may override within its range.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    /// The kind of value.
    #[serde(rename = "type")]
    pub kind: ParameterKind,
    /// The value used unless a dealer overrides it.
    pub default: Value,
    /// The smallest allowed value (numbers and durations).
    #[serde(default)]
    pub min: Option<Value>,
    /// The largest allowed value (numbers and durations).
    #[serde(default)]
    pub max: Option<Value>,
    /// The allowed values (strings only).
    #[serde(default)]
    pub values: Option<Vec<String>>,
    /// What the parameter means, in Chinese and English.
    pub title: Label,
    /// Why the default is what it is, in one line (e.g. which sources conflict).
    #[serde(default)]
    pub rationale: Option<String>,
    /// Where the value comes from in the source documents.
    #[serde(default)]
    pub source: Option<Source>,
}

/// The kind of a parameter's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParameterKind {
    /// A whole number.
    Integer,
    /// A number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A text; `values` may restrict it to a list.
    String,
    /// An ISO 8601 duration such as `PT15M`, `PT72H` or `P1D`.
    Duration,
}

/// One step of a process. `type` says which kind.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Step {
    /// Work for a person: it waits in the inbox of the candidate roles until someone completes
    /// it with its form.
    Task(TaskStep),
    /// An automatic step: invokes a named action (a plugin) with input, stores its output.
    Action(ActionStep),
    /// Chooses the next step: the first branch whose guard is true, else the default.
    Decision(DecisionStep),
    /// Starts several branches at once; a `join` step brings them back together.
    Parallel(ParallelStep),
    /// Waits for the branches of a `parallel` step: all of them, or a number of them, or stops
    /// early when a guard says so (e.g. any party rejects).
    Join(JoinStep),
    /// Waits for a time: a duration after entering, or a moment computed from the data.
    Wait(WaitStep),
    /// Waits for a named message, correlated by a key (e.g. "parts arrived for request X").
    Receive(ReceiveStep),
    /// Sends a named message with a key to the instances waiting for it.
    Send(SendStep),
    /// Starts another process and keeps the link; by default waits for it to end.
    Subprocess(SubprocessStep),
    /// Ends the instance with an outcome.
    End(EndStep),
}

/// Work for a person.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskStep {
    /// What the person is asked to do, in Chinese and English (shown in the inbox).
    pub title: Label,
    /// More detail: the work standard.
    #[serde(default)]
    pub description: Option<Label>,
    /// Where the step comes from in the source documents.
    #[serde(default)]
    pub source: Option<Source>,
    /// The candidate roles: anyone holding one of them may claim and complete the task.
    pub roles: Vec<String>,
    /// Who gets the task directly: an expression giving a user id, e.g.
    /// `=done_by.reception` (the person who completed step `reception`).
    #[serde(default)]
    pub assignee: Option<String>,
    /// The form to fill in: the name of a JSON Schema file under `schemas/forms/` (without
    /// `.json`), or an inline JSON Schema. Without a form the task is a simple confirmation.
    #[serde(default)]
    pub form: Option<FormRef>,
    /// `low`, `normal` (the default), `high` or `urgent`, or an expression giving one of them.
    #[serde(default)]
    pub priority: Option<String>,
    /// When the task is due (its SLA): a duration after it opens (`PT15M`), an expression giving
    /// the moment (`=ts(appointment_at) - hours(1)`), or `{after: PT2H, calendar: workshop}` for
    /// working time.
    #[serde(default)]
    pub due: Option<When>,
    /// Timers that run while the task is open.
    #[serde(default)]
    pub timers: Vec<Timer>,
    /// Output mapping: variables of the instance data to set when the task completes. The
    /// submitted form is readable here as the step's id.
    #[serde(default)]
    pub set: IndexMap<String, Value>,
    /// The step that follows.
    pub next: String,
}

/// A form: a named file under `schemas/forms/`, or an inline JSON Schema.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum FormRef {
    /// The name of a file `schemas/forms/<name>.json`.
    Named(String),
    /// An inline JSON Schema of type `object`.
    Inline(IndexMap<String, Value>),
}

/// A moment: a duration after entering the step, or an expression giving a timestamp, measured
/// in a business calendar if one is named.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum When {
    /// A duration such as `PT15M`, or an expression (starting with `=`) giving a timestamp.
    Short(String),
    /// The long form.
    Spec(WhenSpec),
}

/// The long form of a moment.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WhenSpec {
    /// A duration after entering the step (`PT2H`), or an expression giving a duration.
    #[serde(default)]
    pub after: Option<String>,
    /// An expression giving the moment, e.g. `=ts(appointment_at) - days(1)`.
    #[serde(default)]
    pub at: Option<String>,
    /// Count `after` in this calendar's working time; move `at` to its next open moment.
    #[serde(default)]
    pub calendar: Option<String>,
}

/// A timer attached to a step: it is armed when the step is entered and disarmed when it is left.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Timer {
    /// The timer id, unique in the process. A task opened by the timer stores its form under it.
    pub id: String,
    /// What the timer is for.
    #[serde(default)]
    pub title: Option<Label>,
    /// Where the rule comes from in the source documents.
    #[serde(default)]
    pub source: Option<Source>,
    /// Fire this long after entering the step (`PT15M`), or an expression giving a duration.
    #[serde(default)]
    pub after: Option<String>,
    /// Fire at this moment: an expression giving a timestamp, or `due` for the task's due time.
    #[serde(default)]
    pub at: Option<String>,
    /// Fire again every this long while the step is active (the first time after `after`, or
    /// after one period).
    #[serde(default)]
    pub every: Option<String>,
    /// For recurring timers: fire at most this many times.
    #[serde(default)]
    pub max_times: Option<u32>,
    /// Count time in this business calendar's working hours.
    #[serde(default)]
    pub calendar: Option<String>,
    /// A guard: the timer is armed only if it is true when the step is entered, and a recurring
    /// timer fires only while it stays true.
    #[serde(default)]
    pub when: Option<String>,
    /// Send a notification: the input of the `notify` action.
    #[serde(default)]
    pub notify: Option<IndexMap<String, Value>>,
    /// Invoke another action.
    #[serde(default)]
    pub invoke: Option<Invoke>,
    /// Escalate the open task: add candidate roles, reassign, raise the priority.
    #[serde(default)]
    pub escalate: Option<Escalate>,
    /// Open a side task that lives as long as the step does (e.g. an hourly progress call).
    #[serde(default)]
    pub open_task: Option<SideTask>,
    /// Variables to set when the timer fires.
    #[serde(default)]
    pub set: IndexMap<String, Value>,
    /// Leave the step and go to this one (an interrupting timer).
    #[serde(default)]
    pub goto: Option<String>,
}

/// An action invocation.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Invoke {
    /// The action's name.
    pub action: String,
    /// Its input: literal values, or expressions starting with `=`.
    #[serde(default)]
    pub input: IndexMap<String, Value>,
}

/// How a timer escalates the open task of its step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Escalate {
    /// Roles added to the task's candidates.
    #[serde(default)]
    pub add_roles: Vec<String>,
    /// Reassign: an expression giving a user id, or `nobody` to return the task to the pool.
    #[serde(default)]
    pub assignee: Option<String>,
    /// The new priority.
    #[serde(default)]
    pub priority: Option<String>,
}

/// A task opened by a timer beside the step's own work.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SideTask {
    /// What the person is asked to do.
    pub title: Label,
    /// More detail.
    #[serde(default)]
    pub description: Option<Label>,
    /// The candidate roles.
    pub roles: Vec<String>,
    /// Who gets it directly: an expression giving a user id.
    #[serde(default)]
    pub assignee: Option<String>,
    /// The form (a name under `schemas/forms/` or inline).
    #[serde(default)]
    pub form: Option<FormRef>,
    /// The priority.
    #[serde(default)]
    pub priority: Option<String>,
    /// When it is due.
    #[serde(default)]
    pub due: Option<When>,
    /// Variables to set when it is completed; its form is readable as the timer's id.
    #[serde(default)]
    pub set: IndexMap<String, Value>,
}

/// An automatic step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionStep {
    /// What the step does.
    #[serde(default)]
    pub title: Option<Label>,
    /// Where the step comes from in the source documents.
    #[serde(default)]
    pub source: Option<Source>,
    /// The action to invoke (a built-in or a plugin), e.g. `notify` or `inventory.check`.
    pub action: String,
    /// The action's input: literal values, or expressions starting with `=`.
    #[serde(default)]
    pub input: IndexMap<String, Value>,
    /// How often to try, and how long to wait between tries.
    #[serde(default)]
    pub retry: Option<Retry>,
    /// After the last failed try, go here instead of raising an incident.
    #[serde(default)]
    pub on_failure: Option<String>,
    /// Timers that run while the action is pending.
    #[serde(default)]
    pub timers: Vec<Timer>,
    /// Output mapping: variables to set from the result, readable as the step's id.
    #[serde(default)]
    pub set: IndexMap<String, Value>,
    /// The step that follows.
    pub next: String,
}

/// A retry policy.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Tries in all, the first included (1 to 20; default 3).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// The wait before the second try (default `PT10S`); each later wait doubles, up to
    /// `max_backoff`.
    #[serde(default)]
    pub backoff: Option<String>,
    /// The longest wait between tries (default `PT10M`).
    #[serde(default)]
    pub max_backoff: Option<String>,
}

/// Chooses the next step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionStep {
    /// The question the decision answers.
    #[serde(default)]
    pub title: Option<Label>,
    /// Where the rule comes from in the source documents.
    #[serde(default)]
    pub source: Option<Source>,
    /// The branches, tried in order: the first whose guard is true is taken.
    pub branches: Vec<Branch>,
    /// The step taken when no guard is true.
    pub default: String,
}

/// One branch of a decision.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    /// The guard: a Rhai expression over the instance data that gives `true` or `false`.
    pub when: String,
    /// The step taken when the guard is true.
    pub next: String,
    /// A name for the branch, shown on the graph.
    #[serde(default)]
    pub label: Option<Label>,
}

/// Starts several branches at once.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParallelStep {
    /// What runs in parallel.
    #[serde(default)]
    pub title: Option<Label>,
    /// Where the rule comes from in the source documents.
    #[serde(default)]
    pub source: Option<Source>,
    /// The first step of each branch. Every branch must lead to the join of this step.
    pub branches: Vec<String>,
}

/// Waits for the branches of a parallel step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinStep {
    /// What the join waits for.
    #[serde(default)]
    pub title: Option<Label>,
    /// Where the rule comes from in the source documents.
    #[serde(default)]
    pub source: Option<Source>,
    /// The parallel step whose branches this join waits for.
    pub of: String,
    /// `all` (the default) or how many branches must arrive; the others are then cancelled.
    #[serde(default)]
    pub wait_for: Option<WaitFor>,
    /// A guard checked each time a branch arrives: when true, the other branches are
    /// cancelled and the flow goes to `on_abort` (e.g. "any party rejects").
    #[serde(default)]
    pub abort_when: Option<String>,
    /// Where to go when `abort_when` is true.
    #[serde(default)]
    pub on_abort: Option<String>,
    /// Variables to set when the join completes.
    #[serde(default)]
    pub set: IndexMap<String, Value>,
    /// The step that follows.
    pub next: String,
}

/// How many branches a join waits for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum WaitFor {
    /// A number of branches.
    Count(u32),
    /// `all`.
    Keyword(String),
}

/// Waits for a moment.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitStep {
    /// What the wait is for.
    #[serde(default)]
    pub title: Option<Label>,
    /// Where the rule comes from in the source documents.
    #[serde(default)]
    pub source: Option<Source>,
    /// Wait this long after entering (`PT3H`), or an expression giving a duration.
    #[serde(default)]
    pub after: Option<String>,
    /// Wait until this moment: an expression giving a timestamp.
    #[serde(default)]
    pub at: Option<String>,
    /// Count `after` in this calendar's working time, or move `at` to its next open moment.
    #[serde(default)]
    pub calendar: Option<String>,
    /// Variables to set when the wait ends.
    #[serde(default)]
    pub set: IndexMap<String, Value>,
    /// The step that follows.
    pub next: String,
}

/// Waits for a message.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiveStep {
    /// What the step waits for.
    #[serde(default)]
    pub title: Option<Label>,
    /// Where the rule comes from in the source documents.
    #[serde(default)]
    pub source: Option<Source>,
    /// The message name, e.g. `parts_arrived`.
    pub message: String,
    /// The correlation key: an expression giving the value the message must carry (e.g.
    /// `=purchase.request_no`). Without a key, any message of that name for this instance.
    #[serde(default)]
    pub key: Option<String>,
    /// Timers that run while waiting (e.g. a reminder, or a timeout with `goto`).
    #[serde(default)]
    pub timers: Vec<Timer>,
    /// Variables to set from the payload, readable as the step's id.
    #[serde(default)]
    pub set: IndexMap<String, Value>,
    /// The step that follows.
    pub next: String,
}

/// Sends a message.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendStep {
    /// What the message says.
    #[serde(default)]
    pub title: Option<Label>,
    /// Where the rule comes from in the source documents.
    #[serde(default)]
    pub source: Option<Source>,
    /// The message name.
    pub message: String,
    /// The correlation key: an expression giving its value.
    #[serde(default)]
    pub key: Option<String>,
    /// The payload: literal values, or expressions starting with `=`.
    #[serde(default)]
    pub payload: IndexMap<String, Value>,
    /// The step that follows.
    pub next: String,
}

/// Starts another process.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubprocessStep {
    /// What the other process does here.
    #[serde(default)]
    pub title: Option<Label>,
    /// Where the rule comes from in the source documents.
    #[serde(default)]
    pub source: Option<Source>,
    /// The id of the process to start (in the same pack).
    pub process: String,
    /// Its start data: literal values, or expressions starting with `=`.
    #[serde(default)]
    pub input: IndexMap<String, Value>,
    /// Its business key: an expression.
    #[serde(default)]
    pub business_key: Option<String>,
    /// Wait for the other process to end (the default), or go on at once and keep the link.
    #[serde(default)]
    pub wait: Option<bool>,
    /// Timers that run while waiting.
    #[serde(default)]
    pub timers: Vec<Timer>,
    /// Variables to set from the other process's result, readable as the step's id.
    #[serde(default)]
    pub set: IndexMap<String, Value>,
    /// The step that follows.
    pub next: String,
}

/// Ends the instance.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndStep {
    /// How the instance ended, in words.
    #[serde(default)]
    pub title: Option<Label>,
    /// Where the rule comes from in the source documents.
    #[serde(default)]
    pub source: Option<Source>,
    /// The outcome, in snake_case: `completed` (the default), `cancelled`, `rejected`, ...
    #[serde(default)]
    pub outcome: Option<String>,
    /// Data handed to a parent process that waits for this one: literal values or expressions.
    #[serde(default)]
    pub result: IndexMap<String, Value>,
}

/// A pack manifest (`pack.yaml`): the processes of one directory, with the role catalogue and
/// the business calendars they share.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "sopflow pack manifest")]
pub struct Pack {
    /// The pack id, in snake_case (e.g. `after_sales_standard`).
    pub pack: String,
    /// The pack version, semver (`1.2.0`).
    pub version: String,
    /// The pack's name, in Chinese and English.
    pub title: Label,
    /// What the pack holds.
    #[serde(default)]
    pub description: Option<Label>,
    /// Who publishes the pack (e.g. the brand's after-sales headquarters).
    #[serde(default)]
    pub publisher: Option<String>,
    /// The oldest engine version that can run the pack (semver).
    #[serde(default)]
    pub min_engine: Option<String>,
    /// The role catalogue: every role the pack's processes use, with its names.
    #[serde(default)]
    pub roles: IndexMap<String, Label>,
    /// The business calendars, by name.
    #[serde(default)]
    pub calendars: IndexMap<String, calendar::CalendarSpec>,
    /// Where the form files are, relative to this file (default: the nearest `schemas/forms`
    /// found by walking up from the pack's directory).
    #[serde(default)]
    pub forms: Option<String>,
    /// Plugin scripts shipped with the pack, relative to this file (e.g.
    /// `scripts/vin_check.rhai`); `sopflow pack build` puts them into the archive.
    #[serde(default)]
    pub scripts: Vec<String>,
    /// How running instances of earlier versions may move onto this one: for each range of
    /// installed versions, which old step corresponds to which new step.
    #[serde(default)]
    pub migrations: Vec<Migration>,
}

/// A migration map: where the tokens of instances started on an earlier version go when an
/// operator moves them onto this version.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Migration {
    /// The installed versions this map applies to: a semantic-version requirement such as
    /// `1.x` or `>=1.2, <2`.
    pub from: String,
    /// Per process: old step id -> new step id, for steps that were renamed, merged or
    /// removed. Steps that keep their id need no entry.
    pub map: IndexMap<String, IndexMap<String, String>>,
}
