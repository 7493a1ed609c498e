//! The scenario file format: what a process owner writes to prove a process does what the SOP
//! says (start with data, act as users, let time pass, deliver messages, assert).
//!
//! Like process files, scenarios are checked against a schema generated from these types
//! (`schemas/scenario.schema.json`), so editors complete them and mistakes are reported with
//! `file:line:column`.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

/// A scenario: one run of a process, step by step, with expectations.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "sopflow scenario")]
pub struct Scenario {
    /// What the scenario shows, in one sentence.
    pub scenario: String,
    /// The process to start (its id in the pack).
    pub process: String,
    /// The virtual clock's start, RFC 3339 with offset (e.g. `2026-03-02T09:00:00+08:00`).
    pub start_at: String,
    /// The time zone the trace is written in (default: the process's calendar's zone).
    #[serde(default)]
    pub timezone: Option<String>,
    /// The dealer the instance belongs to.
    #[serde(default)]
    pub dealer: Option<String>,
    /// The business key.
    #[serde(default)]
    pub business_key: Option<String>,
    /// The users who act, with the roles each holds.
    #[serde(default)]
    pub users: IndexMap<String, Vec<String>>,
    /// Canned answers of actions: every invocation of the action gets this answer at once. The
    /// `notify` action succeeds by default.
    #[serde(default)]
    pub actions: IndexMap<String, ActionReply>,
    /// The start data.
    #[serde(default)]
    pub data: serde_json::Map<String, Value>,
    /// Parameter values for this run of the process, as a dealer's overlay would set them
    /// (checked against each parameter's type and range).
    #[serde(default)]
    pub params: serde_json::Map<String, Value>,
    /// What happens, in order.
    pub steps: Vec<ScenarioStep>,
}

/// A canned answer of an action.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionReply {
    /// The output, on success.
    #[serde(default)]
    pub output: Option<Value>,
    /// An error, for a failure.
    #[serde(default)]
    pub error: Option<String>,
    /// Whether a failure may be retried (default true).
    #[serde(default)]
    pub retryable: Option<bool>,
    /// No canned answer: the scenario answers each invocation itself with `reply` or `fail`.
    #[serde(default)]
    pub manual: Option<bool>,
}

/// One step of a scenario. Exactly one of the verbs is given; `in` picks the instance (the
/// most recent instance of that process; by default the scenario's own).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioStep {
    /// Complete the open task at this step (or, for a side task, this timer id).
    #[serde(default)]
    pub complete: Option<String>,
    /// Claim the open task at this step.
    #[serde(default)]
    pub claim: Option<String>,
    /// Give the task at this step back to the pool.
    #[serde(default)]
    pub unclaim: Option<String>,
    /// Hand the task at this step to the user in `to`.
    #[serde(default)]
    pub delegate: Option<String>,
    /// The user acting (`complete`, `claim`, `unclaim`, `delegate`, incidents).
    #[serde(default)]
    pub by: Option<String>,
    /// The delegate.
    #[serde(default)]
    pub to: Option<String>,
    /// The form data for `complete`.
    #[serde(default)]
    pub form: Option<Value>,
    /// Deliver a message.
    #[serde(default)]
    pub message: Option<MessageStep>,
    /// Let this much time pass (ISO 8601 duration); due timers fire in order.
    #[serde(default)]
    pub advance: Option<String>,
    /// Let time pass until this moment (RFC 3339).
    #[serde(default)]
    pub advance_to: Option<String>,
    /// Answer the pending action of this step.
    #[serde(default)]
    pub reply: Option<String>,
    /// The action's output for `reply`.
    #[serde(default)]
    pub output: Option<Value>,
    /// Make the pending action of this step fail with this error.
    #[serde(default)]
    pub fail: Option<String>,
    /// With `fail`: whether retrying may help (default true).
    #[serde(default)]
    pub retryable: Option<bool>,
    /// Retry the open incident at this step.
    #[serde(default)]
    pub retry_incident: Option<String>,
    /// Skip the open incident at this step.
    #[serde(default)]
    pub skip_incident: Option<String>,
    /// Cancel the instance, with this reason.
    #[serde(default)]
    pub cancel: Option<String>,
    /// Which instance: the most recent one of this process.
    #[serde(default, rename = "in")]
    pub in_process: Option<String>,
    /// The action must be refused with this reason: `invalid_form`, `not_candidate`,
    /// `claimed_by_other`, `not_assignee`, `delegate_lacks_role`, `no_such_task`, `ended`,
    /// `not_waiting`.
    #[serde(default)]
    pub rejected: Option<String>,
    /// With `rejected: invalid_form`: the fields (JSON pointers) that must be reported.
    #[serde(default)]
    pub errors: Option<Vec<String>>,
    /// Check the state.
    #[serde(default)]
    pub expect: Option<Expect>,
}

/// A message to deliver.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageStep {
    /// The name.
    pub name: String,
    /// The correlation key.
    #[serde(default)]
    pub key: Option<String>,
    /// The payload.
    #[serde(default)]
    pub payload: Option<Value>,
}

/// Expectations on an instance. Only what is given is checked.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The steps (or timer ids, for side tasks) with open tasks, in any order.
    #[serde(default)]
    pub tasks: Option<Vec<String>>,
    /// The steps where tokens stand, in any order.
    #[serde(default)]
    pub position: Option<Vec<String>>,
    /// Data variables that must have these values (others are not checked).
    #[serde(default)]
    pub data: Option<serde_json::Map<String, Value>>,
    /// The outcome (the instance must have ended), or `running`.
    #[serde(default)]
    pub outcome: Option<String>,
    /// The steps with open incidents.
    #[serde(default)]
    pub incidents: Option<Vec<String>>,
    /// The definition ids of armed step timers.
    #[serde(default)]
    pub timers: Option<Vec<String>>,
    /// Open tasks' assignees: step -> user (or `nobody`).
    #[serde(default)]
    pub assignees: Option<IndexMap<String, String>>,
    /// Open tasks' candidate roles: step -> roles.
    #[serde(default)]
    pub roles: Option<IndexMap<String, Vec<String>>>,
    /// Open tasks' due times: step -> RFC 3339 moment.
    #[serde(default)]
    pub due: Option<IndexMap<String, String>>,
    /// Open tasks' priorities: step -> low|normal|high|urgent.
    #[serde(default)]
    pub priority: Option<IndexMap<String, String>>,
    /// Actions invoked so far on this instance: action name -> how many times.
    #[serde(default)]
    pub invoked: Option<IndexMap<String, u32>>,
    /// SLA breaches so far: step -> how many.
    #[serde(default)]
    pub breaches: Option<IndexMap<String, u32>>,
}

impl ScenarioStep {
    /// The verb, for messages ("step 3 (complete reception)").
    pub fn verb(&self) -> String {
        let pairs: [(&str, Option<String>); 12] = [
            ("complete", self.complete.clone()),
            ("claim", self.claim.clone()),
            ("unclaim", self.unclaim.clone()),
            ("delegate", self.delegate.clone()),
            ("message", self.message.as_ref().map(|m| m.name.clone())),
            ("advance", self.advance.clone()),
            ("advance_to", self.advance_to.clone()),
            ("reply", self.reply.clone()),
            ("fail", self.fail.clone()),
            ("retry_incident", self.retry_incident.clone()),
            ("skip_incident", self.skip_incident.clone()),
            ("cancel", self.cancel.clone()),
        ];
        let verbs: Vec<String> = pairs.iter().filter_map(|(v, arg)| arg.as_ref().map(|a| format!("{v} {a}"))).collect();
        if verbs.is_empty() && self.expect.is_some() { "expect".into() } else { verbs.join(", ") }
    }
}
