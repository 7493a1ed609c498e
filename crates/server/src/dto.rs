//! The JSON shapes of the API: requests and answers, separate from the core's and the store's
//! types, with explicit conversions (`From`/builder functions in the handlers), so the core
//! can change without breaking the API. Requests refuse unknown fields.
//!
//! Times are RFC 3339 strings in UTC; labels carry both languages.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A stable URI naming the kind of problem (`https://sopflow.dev/problems/<kind>`).
    pub r#type: String,
    /// A short summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened in this case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Every field error (validation problems only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldErrorDto>,
}

/// One field's problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldErrorDto {
    /// A JSON pointer into the submitted form, data or body (`/odometer_km`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// A text in Chinese and English.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LabelDto {
    /// Chinese.
    pub zh: String,
    /// English.
    pub en: String,
}

impl From<&model::Label> for LabelDto {
    fn from(l: &model::Label) -> LabelDto {
        LabelDto { zh: l.text("zh").to_string(), en: l.text("en").to_string() }
    }
}

/// The kind of an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrgKind {
    /// A dealer (a tenant): owns instances and tasks.
    Dealer,
    /// The brand's headquarters: reads across dealers.
    Hq,
}

impl OrgKind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            OrgKind::Dealer => "dealer",
            OrgKind::Hq => "hq",
        }
    }
}

/// A language of the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    /// Chinese.
    Zh,
    /// English.
    En,
}

impl Lang {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }
}

/// An organisation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrganisationDto {
    /// The id (for a dealer: the dealer of its instances).
    pub id: String,
    /// Dealer or headquarters.
    pub kind: OrgKind,
    /// The name.
    pub name: String,
    /// The IANA time zone its days are counted in.
    pub time_zone: String,
}

/// A role of the catalogue.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoleDto {
    /// The id.
    pub id: String,
    /// Chinese name.
    pub zh: String,
    /// English name.
    pub en: String,
}

/// The caller.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MeDto {
    /// The user id.
    pub id: String,
    /// The display name.
    pub name: String,
    /// The organisation.
    pub organisation: OrganisationDto,
    /// The roles held there.
    pub roles: Vec<RoleDto>,
    /// Manages the organisation's users, tokens and incidents.
    pub admin: bool,
    /// Holds a manager role of a dealer: reads all its tasks, its workload and its KPIs.
    pub manager: bool,
    /// The preferred language.
    pub lang: Lang,
}

/// Preferences of the caller.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    /// The preferred language.
    pub lang: Lang,
}

/// A password login.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The organisation id.
    pub organisation: String,
    /// The user id.
    pub username: String,
    /// The password.
    pub password: String,
}

/// A token issued by a login.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    /// The bearer token (shown once).
    pub token: String,
    /// When it stops working.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// How urgent a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Low.
    Low,
    /// Normal.
    Normal,
    /// High.
    High,
    /// Urgent.
    Urgent,
}

impl Priority {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }

    /// From the stored word (unknown words read as normal).
    pub fn parse(s: &str) -> Priority {
        match s {
            "low" => Priority::Low,
            "high" => Priority::High,
            "urgent" => Priority::Urgent,
            _ => Priority::Normal,
        }
    }
}

/// Where a task stands against its due time, at the server's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sla {
    /// Not due soon (or no due time).
    OnTime,
    /// Due within 30 minutes or 10% of its SLA, whichever is larger.
    DueSoon,
    /// The due time has passed.
    Overdue,
}

/// A task in the inbox.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TaskDto {
    /// The task id.
    pub id: String,
    /// The instance.
    pub instance: String,
    /// The dealer.
    pub dealer: String,
    /// The process id.
    pub process: String,
    /// The process title.
    pub process_title: LabelDto,
    /// The step (or timer, for a side task).
    pub step: String,
    /// What to do.
    pub title: LabelDto,
    /// Candidate roles.
    pub roles: Vec<String>,
    /// The candidate roles with their names from the role catalogue, in the order of `roles`
    /// (a role missing from the catalogue is named by its id).
    pub role_names: Vec<RoleDto>,
    /// Who has it.
    pub assignee: Option<String>,
    /// How urgent.
    pub priority: Priority,
    /// When it is due.
    #[schema(format = DateTime)]
    pub due_at: Option<String>,
    /// When it opened.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The instance's business key (plate, repair-order number, ...).
    pub business_key: Option<String>,
    /// Against the due time.
    pub sla: Sla,
    /// The named form, if any.
    pub form: Option<String>,
    /// The server's clock when this was read (a virtual clock's time when one is on): the
    /// moment `sla` was judged at, for clients that keep badges live.
    #[schema(format = DateTime)]
    pub now: String,
}

/// The inbox counts.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct CountsDto {
    /// Assigned to the caller.
    pub mine: i64,
    /// Unclaimed, in the caller's roles.
    pub unassigned: i64,
    /// Due time passed.
    pub overdue: i64,
    /// Due before the end of today (in the dealer's time zone), overdue ones included.
    pub due_today: i64,
    /// All visible.
    pub total: i64,
}

/// A page of the inbox.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InboxPage {
    /// The tasks, by due time then id.
    pub items: Vec<TaskDto>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// Counts within the `role` and `process` filters (absent with `counts=false`).
    pub counts: Option<CountsDto>,
    /// The server's clock when the page was read (a virtual clock's time when one is on).
    #[schema(format = DateTime)]
    pub now: String,
}

/// Whose tasks to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssigneeFilter {
    /// Assigned to the caller.
    Me,
    /// Unclaimed, in the caller's roles.
    Nobody,
    /// Both.
    Any,
}

/// Claimed or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Someone has it.
    Claimed,
    /// In the pool.
    Unclaimed,
}

/// Whose work an inbox lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InboxScope {
    /// The caller's own: tasks of their roles and tasks assigned to them (headquarters: all).
    #[default]
    Mine,
    /// Every open task of the dealer, whoever it waits for: for the dealer's managers and
    /// administrators (and headquarters).
    Dealer,
}

/// Inbox filters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TaskListQuery {
    /// `mine` (default) or `dealer` (managers: every task of the dealer).
    pub scope: Option<InboxScope>,
    /// `me`, `nobody` or `any` (default).
    pub assignee: Option<AssigneeFilter>,
    /// `claimed` or `unclaimed`.
    pub state: Option<TaskState>,
    /// Only tasks for this candidate role.
    pub role: Option<String>,
    /// Only this process.
    pub process: Option<String>,
    /// Only this priority.
    pub priority: Option<Priority>,
    /// Only tasks due before this moment (RFC 3339).
    #[param(format = DateTime)]
    pub due_before: Option<String>,
    /// Only tasks whose due time has passed.
    pub overdue: Option<bool>,
    /// Business key or title contains this text.
    pub q: Option<String>,
    /// Headquarters only: the dealer to read.
    pub dealer: Option<String>,
    /// Include the counts (default true).
    pub counts: Option<bool>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1..200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// A step already done on the instance.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DoneStepDto {
    /// The step.
    pub step: String,
    /// Its title.
    pub title: LabelDto,
    /// Who completed it.
    pub by: Option<String>,
    /// When.
    #[schema(format = DateTime)]
    pub at: String,
}

/// A task with what is needed to do it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TaskDetail {
    /// The task.
    pub task: TaskDto,
    /// The JSON Schema of its form (`{}`-like when there is no form).
    #[schema(value_type = Object)]
    pub form_schema: Value,
    /// Whether the caller may claim, delegate or complete it.
    pub can_act: bool,
    /// The instance's data.
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
    /// The steps already done.
    pub done: Vec<DoneStepDto>,
    /// The server's clock when this was read (a virtual clock's time when one is on).
    #[schema(format = DateTime)]
    pub now: String,
}

/// Hand a task to someone else.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DelegateRequest {
    /// The user id of the delegate (of the same dealer, holding one of the task's roles).
    pub to: String,
}

/// Complete a task.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    /// The form data, validated against the task's form schema.
    #[schema(value_type = Object)]
    pub form: Map<String, Value>,
}

/// Start an instance.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// The process id (its newest deployment for the caller's dealer is used).
    pub process: String,
    /// The start data, validated against the process's data schema.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
    /// A business key (plate number, repair-order number, ...).
    pub business_key: Option<String>,
}

/// Running or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstanceStatus {
    /// Running (as a filter: not ended, including those with an incident).
    Running,
    /// Running, stopped by an open incident that an administrator must retry or skip.
    Incident,
    /// Ended (see `outcome`).
    Ended,
}

/// Where a token stands.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PositionDto {
    /// The step.
    pub step: String,
    /// Its title.
    pub title: LabelDto,
    /// The step kind (`task`, `receive`, ...).
    pub kind: String,
    /// What it waits for, in words (`task …-t3`, `message parts_arrived`).
    pub waiting_for: String,
    /// Since when.
    #[schema(format = DateTime)]
    pub since: String,
}

/// An armed timer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TimerDto {
    /// The timer id.
    pub id: String,
    /// What it is (a timer's id in the definition, `wait`, `retry`, or `due` for an SLA).
    pub def: String,
    /// When it fires.
    #[schema(format = DateTime)]
    pub fire_at: String,
}

/// An open incident.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IncidentDto {
    /// The incident id.
    pub id: String,
    /// The step.
    pub step: String,
    /// What happened.
    pub message: String,
    /// When.
    #[schema(format = DateTime)]
    pub at: String,
}

/// A link to a parent instance.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ParentDto {
    /// The parent.
    pub id: String,
    /// Its subprocess step.
    pub step: String,
}

/// A link to a child instance.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChildDto {
    /// The child.
    pub id: String,
    /// Its process.
    pub process: String,
    /// The subprocess step that started it.
    pub step: String,
    /// How it ended, once it has.
    pub outcome: Option<String>,
}

/// An instance.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InstanceDto {
    /// The id.
    pub id: String,
    /// The process id.
    pub process: String,
    /// The process title.
    pub process_title: LabelDto,
    /// The process version.
    pub version: u32,
    /// The definition's content hash.
    pub hash: String,
    /// The dealer.
    pub dealer: String,
    /// The business key.
    pub business_key: Option<String>,
    /// Running or ended.
    pub status: InstanceStatus,
    /// How it ended.
    pub outcome: Option<String>,
    /// The data.
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
    /// Where its tokens stand.
    pub position: Vec<PositionDto>,
    /// Open tasks.
    pub tasks: Vec<TaskDto>,
    /// Armed timers.
    pub timers: Vec<TimerDto>,
    /// Open incidents.
    pub incidents: Vec<IncidentDto>,
    /// The parent.
    pub parent: Option<ParentDto>,
    /// The children.
    pub children: Vec<ChildDto>,
    /// When it started.
    #[schema(format = DateTime)]
    pub started_at: String,
    /// When it ended.
    #[schema(format = DateTime)]
    pub ended_at: Option<String>,
    /// The server's clock when this was read (a virtual clock's time when one is on).
    #[schema(format = DateTime)]
    pub now: String,
}

/// An instance in a list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InstanceSummaryDto {
    /// The id.
    pub id: String,
    /// The dealer.
    pub dealer: String,
    /// The process id.
    pub process: String,
    /// The business key.
    pub business_key: Option<String>,
    /// Running or ended.
    pub status: InstanceStatus,
    /// How it ended.
    pub outcome: Option<String>,
    /// The parent.
    pub parent: Option<String>,
    /// When it started.
    #[schema(format = DateTime)]
    pub started_at: String,
    /// When it ended.
    #[schema(format = DateTime)]
    pub ended_at: Option<String>,
}

/// A page of instances, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InstancePage {
    /// The instances.
    pub items: Vec<InstanceSummaryDto>,
    /// Pass as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

/// Instance list filters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InstanceListQuery {
    /// Only of this process.
    pub process: Option<String>,
    /// Only running or ended ones.
    pub status: Option<InstanceStatus>,
    /// Business key contains this text.
    pub q: Option<String>,
    /// Headquarters only: only this dealer's.
    pub dealer: Option<String>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1..200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// One audit entry.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryDto {
    /// Global order.
    pub seq: i64,
    /// Position in the instance's chain, from 1.
    pub chain_seq: i64,
    /// When.
    #[schema(format = DateTime)]
    pub at: String,
    /// Who.
    #[schema(value_type = Object)]
    pub actor: Value,
    /// What happened (`started`, `task_completed`, `timer_fired`, ...).
    pub kind: String,
    /// The step concerned.
    pub step: Option<String>,
    /// The details: the input, the events (with the guards that decided), the data diff.
    #[schema(value_type = Object)]
    pub entry: Value,
    /// The definition it ran on.
    pub definition_hash: Option<String>,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// An instance's audit trail.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditDto {
    /// The chain (the instance id).
    pub chain: String,
    /// Whether every hash links and matches its entry.
    pub verified: bool,
    /// The first entry that does not fit, if any.
    pub broken: Option<String>,
    /// The entries in order.
    pub entries: Vec<AuditEntryDto>,
}

/// One line of the trace.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TraceLineDto {
    /// When.
    #[schema(format = DateTime)]
    pub at: String,
    /// The audit entry it comes from.
    pub chain_seq: i64,
    /// What happened, in words.
    pub text: String,
}

/// The readable trace of an instance.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TraceDto {
    /// The instance.
    pub instance: String,
    /// One line per event.
    pub lines: Vec<TraceLineDto>,
}

/// A Mermaid flowchart.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GraphDto {
    /// The process.
    pub process: String,
    /// Its version.
    pub version: u32,
    /// The language of the labels.
    pub lang: Lang,
    /// The Mermaid source.
    pub mermaid: String,
}

/// The language of a graph.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GraphQuery {
    /// `zh` or `en` (default: the caller's preference).
    pub lang: Option<Lang>,
}

/// Cancel an instance.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Why.
    pub reason: String,
}

/// The result of an administrator's command on an instance.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CommandResult {
    /// The instance.
    pub instance: String,
    /// Whether it has ended.
    pub ended: bool,
}

/// A message from outside.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageRequest {
    /// The message name.
    pub name: String,
    /// The correlation key (e.g. a purchase-order number).
    pub key: Option<String>,
    /// The payload.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub payload: Value,
}

/// Where a message went.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageResult {
    /// The instances it was delivered to.
    pub delivered_to: Vec<String>,
    /// Nobody waited: it is kept for the next instance that does.
    pub buffered: bool,
}

/// A deployed process.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProcessDto {
    /// The id.
    pub id: String,
    /// The version.
    pub version: u32,
    /// The content hash.
    pub hash: String,
    /// The title.
    pub title: LabelDto,
    /// The pack it came from.
    pub pack: Option<String>,
    /// The pack's version.
    pub pack_version: Option<String>,
    /// The roles its tasks are for.
    pub roles: Vec<String>,
}

/// A user.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserDto {
    /// The id.
    pub id: String,
    /// The organisation.
    pub organisation: String,
    /// The display name.
    pub name: String,
    /// The roles held.
    pub roles: Vec<String>,
    /// An administrator of the organisation.
    pub admin: bool,
    /// Whether its tokens work.
    pub active: bool,
    /// Whether it may log in with a password.
    pub has_password: bool,
}

/// A new user.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// The id (letters, digits, `.`, `_`, `-`; unique across organisations).
    pub id: String,
    /// The organisation (default: the caller's).
    pub organisation: Option<String>,
    /// The display name (default: the id).
    pub name: Option<String>,
    /// Roles of the catalogue.
    #[serde(default)]
    pub roles: Vec<String>,
    /// An administrator of the organisation.
    #[serde(default)]
    pub admin: bool,
    /// A password for logging in (at least 8 characters).
    pub password: Option<String>,
}

/// A user's roles.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRoles {
    /// Roles of the catalogue.
    pub roles: Vec<String>,
    /// An administrator of the organisation (unchanged if absent).
    pub admin: Option<bool>,
}

/// A new organisation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrganisation {
    /// The id (for a dealer: its dealer code).
    pub id: String,
    /// Dealer or headquarters.
    pub kind: OrgKind,
    /// The name (default: the id).
    pub name: Option<String>,
    /// The IANA time zone (default `Asia/Shanghai`).
    pub time_zone: Option<String>,
}

/// A new API token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// The user it authenticates.
    pub user: String,
    /// What it is for.
    pub label: Option<String>,
    /// Days until it expires (default: never).
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<u32>,
}

/// A token just created: the only time it is shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// The public id (for revoking).
    pub id: String,
    /// The bearer token.
    pub token: String,
    /// The user.
    pub user: String,
    /// When it expires.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

/// A token, without its secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenDto {
    /// The public id.
    pub id: String,
    /// The user.
    pub user: String,
    /// What it is for.
    pub label: String,
    /// When it was created.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When it expires.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// When it was revoked.
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
}

/// Which tokens to list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TokenListQuery {
    /// The user (default: the caller).
    pub user: Option<String>,
}

/// Which users to list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    /// The organisation (default: the caller's; headquarters administrators may name any).
    pub organisation: Option<String>,
}

/// Move the virtual clock (servers started with `--virtual-clock` only).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockRequest {
    /// An ISO 8601 duration to move forward (`PT2H`).
    pub advance: Option<String>,
    /// A moment to move to (RFC 3339; never backwards).
    #[schema(format = DateTime)]
    pub set: Option<String>,
}

/// The server's time.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClockDto {
    /// Now.
    #[schema(format = DateTime)]
    pub now: String,
}

/// A health answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

// ----- packs --------------------------------------------------------------------------------

/// A `.sopack` archive: a gzip-compressed tar, signed by the publisher.
#[derive(Debug, Clone)]
pub struct ArchiveBytes;

impl utoipa::PartialSchema for ArchiveBytes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .description(Some("A `.sopack` archive (a gzip-compressed tar)"))
            .into()
    }
}

impl ToSchema for ArchiveBytes {}

/// A version of a pack published on this server.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublicationDto {
    /// The pack id.
    pub pack: String,
    /// The version.
    pub version: String,
    /// The archive's digest (what the signature covers).
    pub digest: String,
    /// The publisher key that signed it (`ed25519:<hex>`).
    pub signer: String,
    /// When it was published.
    pub published_at: String,
    /// Who published it.
    pub published_by: String,
}

/// The answer to a publication.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublishedDto {
    /// The publication.
    pub publication: PublicationDto,
    /// `false` when the same archive was published before (nothing changed).
    pub new: bool,
}

/// A process of a published pack version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PackProcessDto {
    /// The process id.
    pub id: String,
    /// Its version number.
    pub version: u32,
    /// Its title.
    pub title: LabelDto,
    /// Its content hash.
    pub hash: String,
}

/// A published pack version: the publication, its manifest and its processes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PackVersionDto {
    /// The publication.
    pub publication: PublicationDto,
    /// The manifest (`pack.yaml`) as JSON.
    #[schema(value_type = Object)]
    pub manifest: Value,
    /// The processes.
    pub processes: Vec<PackProcessDto>,
}

/// Which publications to list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PublicationListQuery {
    /// Only of this pack.
    pub pack: Option<String>,
}

/// Install (or upgrade, re-install, or change the overlay of) a published pack version at the
/// caller's dealer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInstallation {
    /// The pack id.
    pub pack: String,
    /// The published version.
    pub version: String,
    /// The dealer's overlay (YAML text). Without it, the overlay installed now is kept.
    #[serde(default)]
    pub overlay: Option<String>,
    /// Install the standard without any overlay.
    #[serde(default)]
    pub remove_overlay: bool,
    /// Allow installing a version older than the installed one.
    #[serde(default)]
    pub force: bool,
}

/// One installation of a pack at a dealer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InstallationDto {
    /// Its position in the server's installation history.
    pub seq: i64,
    /// The dealer.
    pub dealer: String,
    /// The pack id.
    pub pack: String,
    /// The installed version.
    pub version: String,
    /// The archive's digest.
    pub digest: String,
    /// The publisher key that signed it.
    pub signer: String,
    /// `installed`, `upgraded`, `downgraded`, `reinstalled` or `overlay_changed`.
    pub action: String,
    /// The dealer's overlay (YAML text), if any.
    pub overlay: Option<String>,
    /// When.
    pub installed_at: String,
    /// Who.
    pub installed_by: String,
}

/// A process deployed by an installation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeployedDto {
    /// The process id.
    pub process: String,
    /// The content hash of its effective definition.
    pub hash: String,
    /// `false` when this definition was already current for the dealer.
    pub new: bool,
}

/// How a process changed from the installed version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProcessChangeDto {
    /// The process id.
    pub process: String,
    /// `added`, `removed`, `changed` or `unchanged`.
    pub change: String,
}

/// The answer to an installation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InstalledDto {
    /// The recorded installation.
    pub installation: InstallationDto,
    /// What was deployed for the dealer; running instances stay on their definition.
    pub deployed: Vec<DeployedDto>,
    /// How each process changed from the installed version (empty for a first installation).
    pub changes: Vec<ProcessChangeDto>,
    /// Warnings (`file:line:col: ...`); none of them blocked the installation.
    pub warnings: Vec<String>,
}

/// A dealer's installation of a pack with its history, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InstallationHistoryDto {
    /// The current installation.
    pub current: InstallationDto,
    /// Every installation, oldest first.
    pub history: Vec<InstallationDto>,
}

/// Which installations to list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InstallationListQuery {
    /// Only of this dealer (headquarters; a dealer user sees only their own).
    pub dealer: Option<String>,
    /// Only of this pack.
    pub pack: Option<String>,
}

/// Which pack the compliance report is about.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ComplianceQuery {
    /// The pack id.
    pub pack: String,
}

/// One way a dealer's overlay differs from the standard.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeviationDto {
    /// The dealer.
    pub dealer: String,
    /// The process, if the deviation is in one.
    pub process: Option<String>,
    /// What kind of change: `inserted_step`, `disabled_step`, `sla`, `parameter`, `calendar`,
    /// `added_guard`, `role_title` or `label`.
    pub kind: String,
    /// What it changes (a parameter, a step, a branch).
    pub target: String,
    /// The standard's value.
    pub standard: String,
    /// The dealer's value.
    pub dealer_value: String,
    /// `info`, `minor` or `major`.
    pub severity: String,
}

/// A dealer's installation of the pack, in the compliance report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DealerComplianceDto {
    /// The dealer.
    pub dealer: String,
    /// The installed version.
    pub version: String,
    /// Whether the dealer has an overlay.
    pub has_overlay: bool,
    /// How many deviations it has.
    pub n_deviations: usize,
}

/// Every dealer's deviations from a pack's standard.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ComplianceDto {
    /// The pack id.
    pub pack: String,
    /// The dealers that installed it.
    pub dealers: Vec<DealerComplianceDto>,
    /// Every deviation, dealer by dealer, most severe first.
    pub deviations: Vec<DeviationDto>,
}

/// Whose workload to read and what counts as due soon.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WorkloadParams {
    /// Headquarters: one dealer; without it, every dealer summarised per dealer. Dealer
    /// managers and administrators: their own dealer (the default).
    pub dealer: Option<String>,
    /// Tasks due within this many minutes count as due soon, 1..10080 (default 60).
    #[param(minimum = 1, maximum = 10080)]
    pub due_soon_minutes: Option<u32>,
}

/// Open tasks against their due times.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
pub struct LoadDto {
    /// Open.
    pub open: i64,
    /// Past their due time.
    pub overdue: i64,
    /// Due within the due-soon window, not yet overdue.
    pub due_soon: i64,
}

/// The unclaimed tasks waiting in one role's pool.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoleLoadDto {
    /// The role.
    pub role: String,
    /// Its names.
    pub title: LabelDto,
    /// The counts.
    #[serde(flatten)]
    pub load: LoadDto,
}

/// The tasks one person has claimed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PersonLoadDto {
    /// The user id.
    pub user: String,
    /// The display name (the id when the user is unknown).
    pub name: String,
    /// The counts.
    #[serde(flatten)]
    pub load: LoadDto,
}

/// The open tasks of one dealer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DealerLoadDto {
    /// The dealer.
    pub dealer: String,
    /// The counts.
    #[serde(flatten)]
    pub load: LoadDto,
}

/// A dealer's open work (or every dealer's, for headquarters), and its SLA breaches.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkloadDto {
    /// The dealer, or none for every dealer.
    pub dealer: Option<String>,
    /// The server's clock when this was read.
    #[schema(format = DateTime)]
    pub now: String,
    /// Tasks due before this moment (and not overdue) are due soon.
    #[schema(format = DateTime)]
    pub due_soon_until: String,
    /// All the open tasks counted here.
    pub total: LoadDto,
    /// Unclaimed tasks by candidate role (a task for two roles counts in both); one dealer only.
    pub by_role: Vec<RoleLoadDto>,
    /// Claimed tasks by the person holding them; one dealer only.
    pub by_person: Vec<PersonLoadDto>,
    /// Open tasks by dealer; every dealer only.
    pub by_dealer: Vec<DealerLoadDto>,
    /// Overdue tasks, oldest due time first, at most 100.
    pub breaches: Vec<TaskDto>,
}

/// The dealer and period of a KPI report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KpiParams {
    /// Headquarters: one dealer; without it, every dealer together. Dealer managers and
    /// administrators: their own dealer (the default).
    pub dealer: Option<String>,
    /// The start of the period, included: an RFC 3339 time or a date (`2026-03-01`, midnight
    /// UTC). Default: 30 days before `to`.
    pub from: Option<String>,
    /// The end of the period, excluded: an RFC 3339 time or a date. Default: now.
    pub to: Option<String>,
}

/// A target a KPI is held to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TargetDto {
    /// `at_least` or `at_most`.
    pub kind: String,
    /// The ratio.
    pub value: f64,
}

/// A ratio with its target.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RatioDto {
    /// What is counted.
    pub numerator: u64,
    /// Out of how many.
    pub denominator: u64,
    /// The ratio, when there is anything to divide by.
    pub value: Option<f64>,
    /// The target the sources set, if any.
    pub target: Option<TargetDto>,
    /// Whether the target is met.
    pub met: Option<bool>,
}

/// SLA compliance of one step.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StepSlaDto {
    /// The process.
    pub process: String,
    /// The step.
    pub step: String,
    /// Completed by their due time, out of all completed with one.
    pub on_time: RatioDto,
    /// Due times that passed while the task was open.
    pub breaches: u64,
}

/// A count under a name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CountDto {
    /// The name (a reason, a role).
    pub key: String,
    /// How many.
    pub count: u64,
}

/// The KPIs of a dealer (or of every dealer) over a period, computed from what the engine
/// recorded.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KpiDto {
    /// The dealer, or none for every dealer together.
    pub dealer: Option<String>,
    /// The period's start (included).
    #[schema(format = DateTime)]
    pub from: String,
    /// The period's end (excluded).
    #[schema(format = DateTime)]
    pub to: String,
    /// The server's clock when this was computed.
    #[schema(format = DateTime)]
    pub now: String,
    /// Vehicles that left and got a follow-up call, out of all that left (target 100%).
    pub followup_coverage: RatioDto,
    /// Follow-up calls that reached the customer, out of those that ended (target 80%).
    pub followup_success_rate: RatioDto,
    /// Why follow-ups failed.
    pub followup_failure_reasons: Vec<CountDto>,
    /// Complaints opened, out of service orders started.
    pub complaint_rate: RatioDto,
    /// Major complaints, out of service orders started (target at most 1%).
    pub major_complaint_rate: RatioDto,
    /// Orders that passed final inspection without rework, out of all that passed it.
    pub first_time_fix_rate: RatioDto,
    /// SLA compliance per step, worst first.
    pub sla: Vec<StepSlaDto>,
    /// Open tasks past their due time, by candidate role, now.
    pub overdue_by_role: Vec<CountDto>,
}

/// A graph's format, from the `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    /// `image/svg+xml`.
    Svg,
    /// A [`GraphDto`] with Mermaid text (the default).
    Mermaid,
}
