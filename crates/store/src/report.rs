//! Reads for managers and headquarters: the open work of a dealer (or of every dealer) counted
//! against due times ([`Workload`]), the overdue tasks oldest first, and the records the KPIs
//! are computed from (the instances alive in a period and their audit trails), read in
//! bounded batches. The port is [`ReportStore`]; `MemoryStore` implements it here, the SQL
//! stores in `store-sqlx`.
//!
//! The counts are aggregations the database does (`GROUP BY` over covering indexes), never a
//! load of every task: a dealer has thousands of open tasks and headquarters sees a thousand
//! dealers.
//!
//! "By role" counts the unclaimed tasks waiting in each candidate role's pool (a task for two
//! roles counts in both); "by assignee" counts the claimed tasks each person holds. Together
//! they show every open task: what nobody has taken yet, and who has the rest.
//!
//! Deliberately absent: who may read what (the server decides the dealer) and any KPI rule
//! (the `kpi` crate computes them from these records).

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::{AuditRow, InboxCursor, InstanceRow, Millis, Result, TaskRow};

/// What to count, and the moments that split on time from due soon from overdue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadQuery {
    /// One dealer's work (by role and by assignee), or every dealer's (by dealer) when `None`.
    pub dealer: Option<String>,
    /// Tasks due before this moment are overdue.
    pub now: Millis,
    /// Tasks due from `now` until before this moment are due soon.
    pub soon: Millis,
}

/// Open tasks against their due times.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Load {
    /// Open.
    pub open: i64,
    /// Past their due time.
    pub overdue: i64,
    /// Due within the window (not yet overdue).
    pub due_soon: i64,
}

impl Load {
    /// The sum of two counts.
    pub fn plus(self, other: Load) -> Load {
        Load {
            open: self.open + other.open,
            overdue: self.overdue + other.overdue,
            due_soon: self.due_soon + other.due_soon,
        }
    }

    /// Counts one task due at `due_at` (`None`: no due time).
    pub fn add(&mut self, due_at: Option<Millis>, now: Millis, soon: Millis) {
        self.open += 1;
        let due = due_at.unwrap_or(Millis::MAX);
        self.overdue += i64::from(due < now);
        self.due_soon += i64::from(now <= due && due < soon);
    }
}

/// A group of open tasks: a role, a person or a dealer, with its counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// The role, user or dealer id.
    pub key: String,
    /// Its counts.
    pub load: Load,
}

/// The counts of a [`WorkloadQuery`], each list ordered by key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    /// Unclaimed tasks by candidate role (one dealer only).
    pub by_role: Vec<Group>,
    /// Claimed tasks by assignee (one dealer only).
    pub by_assignee: Vec<Group>,
    /// Every open task by dealer (every dealer only).
    pub by_dealer: Vec<Group>,
    /// Every open task counted once.
    pub total: Load,
}

/// A page of overdue tasks, oldest due time first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverdueQuery {
    /// One dealer's, or every dealer's when `None`.
    pub dealer: Option<String>,
    /// Tasks due before this moment are overdue.
    pub now: Millis,
    /// Start after this position.
    pub after: Option<InboxCursor>,
    /// Page size.
    pub limit: u32,
}

/// A page of the instances alive in a period (started before its end, not ended before its
/// start), in id order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodQuery {
    /// One dealer's, or every dealer's when `None`.
    pub dealer: Option<String>,
    /// The period's start (included).
    pub from: Millis,
    /// The period's end (excluded).
    pub to: Millis,
    /// Only ids after this one.
    pub after: Option<String>,
    /// Page size.
    pub limit: u32,
}

impl PeriodQuery {
    /// Whether an instance was alive in the period.
    pub fn matches(&self, i: &InstanceRow) -> bool {
        self.dealer.as_ref().is_none_or(|d| &i.dealer == d)
            && i.started_at < self.to
            && i.ended_at.is_none_or(|e| e >= self.from)
            && self.after.as_ref().is_none_or(|a| &i.id > a)
    }
}

/// The report port.
pub trait ReportStore: Clone + Send + Sync + 'static {
    /// The open work, counted.
    fn workload(&self, query: &WorkloadQuery) -> impl Future<Output = Result<Workload>> + Send;

    /// Overdue tasks, oldest due time first (then by id).
    fn overdue_tasks(&self, query: &OverdueQuery) -> impl Future<Output = Result<Vec<TaskRow>>> + Send;

    /// A page of the instances alive in a period.
    fn instances_in_period(&self, query: &PeriodQuery) -> impl Future<Output = Result<Vec<InstanceRow>>> + Send;

    /// The audit entries of several chains at once, by chain then position.
    fn audit_of_chains(&self, chains: &[String]) -> impl Future<Output = Result<Vec<AuditRow>>> + Send;
}
