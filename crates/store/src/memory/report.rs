//! [`ReportStore`] on the in-memory store: the same answers as the SQL stores, by scanning.

use std::collections::BTreeMap;

use super::MemoryStore;
use crate::report::{Group, Load, OverdueQuery, PeriodQuery, ReportStore, Workload, WorkloadQuery};
use crate::{AuditRow, InstanceRow, Millis, Result, TaskRow};

impl ReportStore for MemoryStore {
    async fn workload(&self, q: &WorkloadQuery) -> Result<Workload> {
        let s = self.lock();
        let mut by_role: BTreeMap<String, Load> = BTreeMap::new();
        let mut by_assignee: BTreeMap<String, Load> = BTreeMap::new();
        let mut by_dealer: BTreeMap<String, Load> = BTreeMap::new();
        let mut total = Load::default();
        for t in s.tasks.values() {
            if q.dealer.as_ref().is_none_or(|d| &t.dealer == d) {
                total.add(t.due_at, q.now, q.soon);
            }
            match &q.dealer {
                Some(d) if &t.dealer != d => {}
                Some(_) => match &t.assignee {
                    Some(a) => by_assignee.entry(a.clone()).or_default().add(t.due_at, q.now, q.soon),
                    None => {
                        for r in &t.roles {
                            by_role.entry(r.clone()).or_default().add(t.due_at, q.now, q.soon);
                        }
                    }
                },
                None => by_dealer.entry(t.dealer.clone()).or_default().add(t.due_at, q.now, q.soon),
            }
        }
        let groups = |m: BTreeMap<String, Load>| m.into_iter().map(|(key, load)| Group { key, load }).collect();
        Ok(Workload { by_role: groups(by_role), by_assignee: groups(by_assignee), by_dealer: groups(by_dealer), total })
    }

    async fn overdue_tasks(&self, q: &OverdueQuery) -> Result<Vec<TaskRow>> {
        let s = self.lock();
        let mut rows: Vec<TaskRow> = s
            .tasks
            .values()
            .filter(|t| q.dealer.as_ref().is_none_or(|d| &t.dealer == d))
            .filter(|t| t.due_at.unwrap_or(Millis::MAX) < q.now)
            .filter(|t| q.after.as_ref().is_none_or(|a| t.sort_key() > (a.due_key, a.task_id.as_str())))
            .cloned()
            .collect();
        rows.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        rows.truncate(q.limit as usize);
        Ok(rows)
    }

    async fn instances_in_period(&self, q: &PeriodQuery) -> Result<Vec<InstanceRow>> {
        let s = self.lock();
        let mut rows: Vec<InstanceRow> = s.instances.values().filter(|i| q.matches(i)).cloned().collect();
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        rows.truncate(q.limit as usize);
        Ok(rows)
    }

    async fn audit_of_chains(&self, chains: &[String]) -> Result<Vec<AuditRow>> {
        let s = self.lock();
        let mut sorted: Vec<&String> = chains.iter().collect();
        sorted.sort();
        sorted.dedup();
        Ok(sorted
            .into_iter()
            .flat_map(|c| s.chains.get(c).into_iter().flatten().map(|&i| s.audit[i].clone()))
            .collect())
    }
}
