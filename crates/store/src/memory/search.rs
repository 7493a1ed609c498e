//! [`SearchStore`] on the in-memory store: the same answers as the SQL stores, by scanning
//! (the memory store is for tests and small runs, where a scan is cheap).

use super::MemoryStore;
use crate::search::{
    CountQuery, InboxCounts, InstanceSearch, InstanceSummary, SearchStore, TaskSearch, merge_page, task_matches,
    visible,
};
use crate::{Millis, Result, TaskRow};

impl SearchStore for MemoryStore {
    async fn search_tasks(&self, q: &TaskSearch) -> Result<Vec<TaskRow>> {
        let s = self.lock();
        let rows: Vec<TaskRow> = s
            .tasks
            .values()
            .filter(|t| t.dealer == q.dealer)
            .filter(|t| visible(t, &q.roles, q.user.as_deref(), q.all_assigned))
            .filter(|t| task_matches(t, q))
            .cloned()
            .collect();
        Ok(merge_page(vec![rows], q.limit))
    }

    async fn count_tasks(&self, q: &CountQuery) -> Result<InboxCounts> {
        let s = self.lock();
        let mut c = InboxCounts::default();
        for t in s.tasks.values() {
            if t.dealer != q.dealer
                || q.process_id.as_ref().is_some_and(|p| &t.process_id != p)
                || !visible(t, &q.roles, q.user.as_deref(), q.all_assigned)
            {
                continue;
            }
            if t.assignee.is_some() {
                c.mine += 1;
            } else {
                c.unassigned += 1;
            }
            let due = t.due_at.unwrap_or(Millis::MAX);
            c.overdue += i64::from(due < q.now);
            c.due_today += i64::from(due < q.end_of_day);
            c.total += 1;
        }
        Ok(c)
    }

    async fn search_instances(&self, q: &InstanceSearch) -> Result<Vec<InstanceSummary>> {
        let s = self.lock();
        let needle = q.text.as_ref().map(|x| x.to_ascii_lowercase());
        let mut rows: Vec<InstanceSummary> = s
            .instances
            .values()
            .filter(|i| q.dealer.as_ref().is_none_or(|d| &i.dealer == d))
            .filter(|i| q.process_id.as_ref().is_none_or(|p| &i.process_id == p))
            .filter(|i| q.status.as_deref().is_none_or(|st| i.status == st || (st == "running" && i.status != "ended")))
            .filter(|i| q.before.as_ref().is_none_or(|b| &i.id < b))
            .filter(|i| {
                needle.as_ref().is_none_or(|n| {
                    i.business_key.as_deref().is_some_and(|k| k.to_ascii_lowercase().contains(n.as_str()))
                })
            })
            .map(|i| InstanceSummary {
                id: i.id.clone(),
                dealer: i.dealer.clone(),
                process_id: i.process_id.clone(),
                hash: i.hash.clone(),
                business_key: i.business_key.clone(),
                parent_id: i.parent_id.clone(),
                status: i.status.clone(),
                outcome: i.outcome.clone(),
                started_at: i.started_at,
                ended_at: i.ended_at,
            })
            .collect();
        rows.sort_by(|a, b| b.id.cmp(&a.id));
        rows.truncate(q.limit as usize);
        Ok(rows)
    }
}
