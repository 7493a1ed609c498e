//! Reads for the inbox and the instance list, beyond the runtime's own: a filtered inbox page
//! ([`TaskSearch`]), its counts ([`InboxCounts`]), and a page of instances
//! ([`InstanceSearch`]). The port is [`SearchStore`]; `MemoryStore` implements it here, the
//! SQL stores in `store-sqlx`.
//!
//! The inbox is read as the runtime's [`crate::Store::inbox_page`] reads it: a merge of one
//! index range per candidate role (unclaimed tasks) plus the assignee's range, in
//! `(due_key, id)` order, so a page costs `O(roles × limit)` rows whatever the number of open
//! tasks. Filters that bound the range (`due_before`) are part of the range; the others
//! (process, priority, text) are checked on the rows the range yields.
//!
//! Deliberately absent: who may see what. The caller (the server) decides the dealer, roles
//! and user a query runs with.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::{InboxCursor, Millis, Result, TaskRow};

/// A filtered page of one dealer's open tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskSearch {
    /// The dealer.
    pub dealer: String,
    /// Unclaimed tasks for any of these roles are listed.
    pub roles: Vec<String>,
    /// Tasks assigned to this user are listed.
    pub user: Option<String>,
    /// Tasks assigned to anyone are listed (a read across the dealer, e.g. for headquarters).
    pub all_assigned: bool,
    /// Only tasks for this candidate role (restricts the role ranges to it and the assigned
    /// tasks to those with it).
    pub role: Option<String>,
    /// Only tasks of this process.
    pub process_id: Option<String>,
    /// Only tasks of this priority.
    pub priority: Option<String>,
    /// Only tasks due before this moment (exclusive).
    pub due_before: Option<Millis>,
    /// Only tasks whose business key or title (zh or en) contains this text (ASCII letters
    /// compared without case).
    pub text: Option<String>,
    /// Start after this position.
    pub after: Option<InboxCursor>,
    /// Page size.
    pub limit: u32,
}

/// What to count: the same visibility as a [`TaskSearch`], restricted by process only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountQuery {
    /// The dealer.
    pub dealer: String,
    /// Unclaimed tasks for any of these roles.
    pub roles: Vec<String>,
    /// Tasks assigned to this user.
    pub user: Option<String>,
    /// Tasks assigned to anyone.
    pub all_assigned: bool,
    /// Only tasks of this process.
    pub process_id: Option<String>,
    /// Now: tasks due before are overdue.
    pub now: Millis,
    /// The end of today: tasks due before are due today.
    pub end_of_day: Millis,
}

/// The inbox's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxCounts {
    /// Assigned to the user (or, with `all_assigned`, to anyone).
    pub mine: i64,
    /// Unclaimed, in the roles.
    pub unassigned: i64,
    /// Due time passed.
    pub overdue: i64,
    /// Due before the end of today (overdue ones included).
    pub due_today: i64,
    /// All visible.
    pub total: i64,
}

/// An instance without its snapshot, for lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceSummary {
    /// The id.
    pub id: String,
    /// The dealer.
    pub dealer: String,
    /// The process id.
    pub process_id: String,
    /// The definition hash.
    pub hash: String,
    /// The business key.
    pub business_key: Option<String>,
    /// The parent instance.
    pub parent_id: Option<String>,
    /// `running`, `incident` (running, stopped by an open incident) or `ended`.
    pub status: String,
    /// The outcome, once ended.
    pub outcome: Option<String>,
    /// When it started.
    pub started_at: Millis,
    /// When it ended.
    pub ended_at: Option<Millis>,
}

/// A page of instances, newest first (ids are time-ordered).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceSearch {
    /// Only this dealer's (`None`: every dealer's).
    pub dealer: Option<String>,
    /// Only of this process.
    pub process_id: Option<String>,
    /// Only `running` (not ended, with or without an incident), `incident` or `ended` ones.
    pub status: Option<String>,
    /// Only those whose business key contains this text.
    pub text: Option<String>,
    /// Only ids before this one.
    pub before: Option<String>,
    /// Page size.
    pub limit: u32,
}

/// The search port.
pub trait SearchStore: Clone + Send + Sync + 'static {
    /// A filtered inbox page, in `(due_key, id)` order.
    fn search_tasks(&self, query: &TaskSearch) -> impl Future<Output = Result<Vec<TaskRow>>> + Send;

    /// The inbox counts.
    fn count_tasks(&self, query: &CountQuery) -> impl Future<Output = Result<InboxCounts>> + Send;

    /// A page of instances, newest first.
    fn search_instances(&self, query: &InstanceSearch) -> impl Future<Output = Result<Vec<InstanceSummary>>> + Send;
}

/// Whether a task passes the filters a range does not check (process, priority, due bound,
/// text, cursor). Shared by every backend so they filter alike.
pub fn task_matches(t: &TaskRow, q: &TaskSearch) -> bool {
    q.process_id.as_ref().is_none_or(|p| &t.process_id == p)
        && q.role.as_ref().is_none_or(|r| t.roles.contains(r))
        && q.priority.as_ref().is_none_or(|p| &t.priority == p)
        && q.due_before.is_none_or(|d| t.due_at.unwrap_or(Millis::MAX) < d)
        && q.text.as_ref().is_none_or(|x| text_matches(t, x))
        && q.after
            .as_ref()
            .is_none_or(|a| (t.due_at.unwrap_or(Millis::MAX), t.id.as_str()) > (a.due_key, a.task_id.as_str()))
}

fn text_matches(t: &TaskRow, text: &str) -> bool {
    let needle = text.to_ascii_lowercase();
    [t.business_key.as_deref().unwrap_or(""), &t.title_zh, &t.title_en]
        .iter()
        .any(|h| h.to_ascii_lowercase().contains(&needle))
}

/// Sorts, de-duplicates and cuts merged ranges into one page.
pub fn merge_page(ranges: Vec<Vec<TaskRow>>, limit: u32) -> Vec<TaskRow> {
    let mut all: Vec<TaskRow> = ranges.into_iter().flatten().collect();
    all.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    all.dedup_by(|a, b| a.id == b.id);
    all.truncate(limit as usize);
    all
}

/// Whether a task is visible to a count or search's roles, user and `all_assigned`.
pub fn visible(t: &TaskRow, roles: &[String], user: Option<&str>, all_assigned: bool) -> bool {
    match &t.assignee {
        Some(a) => all_assigned || user == Some(a.as_str()),
        None => t.roles.iter().any(|r| roles.contains(r)),
    }
}
