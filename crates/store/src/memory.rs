//! The in-memory store: the reference implementation of the [`Store`] contract, for tests and
//! for running the engine without a database. Nothing survives the process.

mod packs;
mod report;
mod search;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::audit::{self, Draft};
use crate::{
    AuditRow, BufferedMessage, Change, DefinitionRow, Error, InboxQuery, InstanceRow, Lease, Millis, OutboxRow, Result,
    Stats, Store, Subscription, TaskRow, TimerRow, merge_inbox,
};

/// A store in memory. Clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    definitions: BTreeMap<String, DefinitionRow>,
    /// (dealer, process) -> hashes in deployment order.
    deployments: BTreeMap<(String, String), Vec<String>>,
    instances: HashMap<String, InstanceRow>,
    tasks: BTreeMap<String, TaskRow>,
    timers: BTreeMap<String, (TimerRow, Option<(String, Millis)>)>,
    subscriptions: Vec<Subscription>,
    buffered: BTreeMap<i64, BufferedMessage>,
    next_buffered: i64,
    outbox: BTreeMap<i64, Queued>,
    next_outbox: i64,
    audit: Vec<AuditRow>,
    /// chain -> indexes into `audit`, in chain order.
    chains: HashMap<String, Vec<usize>>,
    /// Archives, publications and installations ([`crate::packs::PackStore`]).
    packs: packs::Packs,
}

#[derive(Debug, Clone)]
struct Queued {
    row: OutboxRow,
    available_at: Millis,
    lease: Option<(String, Millis)>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the data as it was between statements; the
        // store has no invariant spanning an unwinding panic, so recover the guard.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn leased_by_other(lease: &Option<(String, Millis)>, now: Millis) -> bool {
    lease.as_ref().is_some_and(|(_, until)| *until > now)
}

impl State {
    fn check(&self, changes: &[Change]) -> Result<()> {
        let mut revisions: HashMap<&str, Option<i64>> = HashMap::new();
        let mut conflicts = Vec::new();
        for c in changes {
            let Some((row, expected)) = &c.instance else { continue };
            let current = match revisions.get(row.id.as_str()) {
                Some(r) => *r,
                None => self.instances.get(&row.id).map(|i| i.revision),
            };
            if current != *expected {
                conflicts.push(row.id.clone());
            }
            revisions.insert(&row.id, Some(row.revision));
        }
        // Like a UNIQUE (chain, chain_seq) constraint: a position is taken once.
        let mut taken: std::collections::HashSet<(&str, i64)> = std::collections::HashSet::new();
        for a in changes.iter().flat_map(|c| &c.audit) {
            let stored = self.chains.get(&a.chain).map_or(0, |v| v.len() as i64);
            if a.chain_seq <= stored || !taken.insert((&a.chain, a.chain_seq)) {
                conflicts.push(a.chain.clone());
            }
        }
        if conflicts.is_empty() {
            Ok(())
        } else {
            conflicts.sort();
            conflicts.dedup();
            Err(Error::Conflict { instances: conflicts })
        }
    }

    fn apply(&mut self, c: &Change) {
        if let Some((row, _)) = &c.instance {
            self.instances.insert(row.id.clone(), row.clone());
        }
        for t in &c.tasks_upserted {
            self.tasks.insert(t.id.clone(), t.clone());
        }
        for id in &c.tasks_removed {
            self.tasks.remove(id);
        }
        for t in &c.timers_set {
            self.timers.insert(t.id.clone(), (t.clone(), None));
        }
        for id in &c.timers_removed {
            self.timers.remove(id);
        }
        for s in &c.subscribed {
            if !self.subscriptions.contains(s) {
                self.subscriptions.push(s.clone());
            }
        }
        self.subscriptions.retain(|s| !c.unsubscribed.contains(s));
        for o in &c.outbox {
            if self.outbox.values().any(|q| q.row.idempotency_key == o.idempotency_key) {
                continue;
            }
            self.next_outbox += 1;
            let seq = self.next_outbox;
            let row = OutboxRow {
                seq,
                instance_id: o.instance_id.clone(),
                dealer: o.dealer.clone(),
                effect: o.effect.clone(),
                idempotency_key: o.idempotency_key.clone(),
                attempts: 0,
            };
            self.outbox.insert(seq, Queued { row, available_at: o.available_at, lease: None });
        }
        for seq in &c.outbox_done {
            self.outbox.remove(seq);
        }
        for b in &c.buffered {
            self.next_buffered += 1;
            let mut b = b.clone();
            b.id = self.next_buffered;
            self.buffered.insert(b.id, b);
        }
        for id in &c.buffered_taken {
            self.buffered.remove(id);
        }
        for a in &c.audit {
            self.push_audit(a.clone());
        }
    }

    /// Chains a draft after the head of its chain and appends it.
    fn append(&mut self, draft: Draft, at: Millis) -> AuditRow {
        let (prev_seq, prev_hash) = match self.chains.get(&draft.chain).and_then(|v| v.last()) {
            Some(&i) => (self.audit[i].chain_seq, self.audit[i].hash.clone()),
            None => (0, audit::GENESIS.to_string()),
        };
        let row = audit::seal(draft, at, prev_seq, &prev_hash);
        self.push_audit(row)
    }

    fn push_audit(&mut self, mut a: AuditRow) -> AuditRow {
        a.seq = self.audit.len() as i64 + 1;
        self.chains.entry(a.chain.clone()).or_default().push(self.audit.len());
        self.audit.push(a.clone());
        a
    }
}

impl Store for MemoryStore {
    async fn put_definition(&self, def: &DefinitionRow) -> Result<bool> {
        let mut s = self.lock();
        if s.definitions.contains_key(&def.hash) {
            return Ok(false);
        }
        s.definitions.insert(def.hash.clone(), def.clone());
        Ok(true)
    }

    async fn definition(&self, hash: &str) -> Result<Option<DefinitionRow>> {
        Ok(self.lock().definitions.get(hash).cloned())
    }

    async fn deploy(&self, dealer: &str, process_id: &str, hash: &str, _at: Millis) -> Result<bool> {
        let mut s = self.lock();
        let list = s.deployments.entry((dealer.into(), process_id.into())).or_default();
        if list.last().map(String::as_str) == Some(hash) {
            return Ok(false);
        }
        list.push(hash.into());
        Ok(true)
    }

    async fn current_deployment(&self, dealer: &str, process_id: &str) -> Result<Option<String>> {
        let s = self.lock();
        let of = |d: &str| s.deployments.get(&(d.to_string(), process_id.to_string())).and_then(|v| v.last().cloned());
        Ok(of(dealer).or_else(|| of("")))
    }

    async fn instance(&self, id: &str) -> Result<Option<InstanceRow>> {
        Ok(self.lock().instances.get(id).cloned())
    }

    async fn commit(&self, changes: &[Change]) -> Result<()> {
        let mut s = self.lock();
        s.check(changes)?;
        for c in changes {
            s.apply(c);
        }
        Ok(())
    }

    async fn take_due_timers(&self, lease: &Lease) -> Result<Vec<TimerRow>> {
        let mut s = self.lock();
        let mut due: Vec<(Millis, String)> = s
            .timers
            .values()
            .filter(|(t, l)| t.fire_at <= lease.now && !leased_by_other(l, lease.now))
            .map(|(t, _)| (t.fire_at, t.id.clone()))
            .collect();
        due.sort();
        due.truncate(lease.limit as usize);
        let mut out = Vec::new();
        for (_, id) in due {
            if let Some((t, l)) = s.timers.get_mut(&id) {
                *l = Some((lease.owner.clone(), lease.until));
                out.push(t.clone());
            }
        }
        Ok(out)
    }

    async fn next_timer_at(&self) -> Result<Option<Millis>> {
        Ok(self.lock().timers.values().map(|(t, _)| t.fire_at).min())
    }

    async fn take_outbox(&self, lease: &Lease) -> Result<Vec<OutboxRow>> {
        let mut s = self.lock();
        let mut out = Vec::new();
        for q in s.outbox.values_mut() {
            if out.len() >= lease.limit as usize {
                break;
            }
            if q.available_at <= lease.now && !leased_by_other(&q.lease, lease.now) {
                q.lease = Some((lease.owner.clone(), lease.until));
                q.row.attempts += 1;
                out.push(q.row.clone());
            }
        }
        Ok(out)
    }

    async fn defer_outbox(&self, seq: i64, available_at: Millis) -> Result<()> {
        if let Some(q) = self.lock().outbox.get_mut(&seq) {
            q.available_at = available_at;
            q.lease = None;
        }
        Ok(())
    }

    async fn release_leases(&self) -> Result<()> {
        let mut s = self.lock();
        for (_, l) in s.timers.values_mut() {
            *l = None;
        }
        for q in s.outbox.values_mut() {
            q.lease = None;
        }
        Ok(())
    }

    async fn subscribers(&self, dealer: &str, name: &str, key: Option<&str>) -> Result<Vec<String>> {
        let s = self.lock();
        let mut out: Vec<String> = s
            .subscriptions
            .iter()
            .filter(|x| x.dealer == dealer && x.name == name && (x.key.is_none() || x.key.as_deref() == key))
            .map(|x| x.instance_id.clone())
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn buffered_message(&self, dealer: &str, name: &str, key: Option<&str>) -> Result<Option<BufferedMessage>> {
        let s = self.lock();
        Ok(s.buffered
            .values()
            .find(|b| b.dealer == dealer && b.name == name && (key.is_none() || b.key.as_deref() == key))
            .cloned())
    }

    async fn task(&self, id: &str) -> Result<Option<TaskRow>> {
        Ok(self.lock().tasks.get(id).cloned())
    }

    async fn inbox_page(&self, query: &InboxQuery) -> Result<Vec<TaskRow>> {
        let s = self.lock();
        let visible: Vec<TaskRow> = s
            .tasks
            .values()
            .filter(|t| t.dealer == query.dealer)
            .filter(|t| query.process_id.as_ref().is_none_or(|p| &t.process_id == p))
            .filter(|t| match &t.assignee {
                Some(a) => query.user.as_ref() == Some(a),
                None => t.roles.iter().any(|r| query.roles.contains(r)),
            })
            .cloned()
            .collect();
        Ok(merge_inbox(vec![visible], query))
    }

    async fn append_audit(&self, draft: Draft, at: Millis) -> Result<AuditRow> {
        Ok(self.lock().append(draft, at))
    }

    async fn audit_chain(&self, chain: &str) -> Result<Vec<AuditRow>> {
        let s = self.lock();
        Ok(s.chains.get(chain).map(|v| v.iter().map(|&i| s.audit[i].clone()).collect()).unwrap_or_default())
    }

    async fn audit_since(&self, after: i64, limit: u32) -> Result<Vec<AuditRow>> {
        let s = self.lock();
        Ok(s.audit.iter().filter(|a| a.seq > after).take(limit as usize).cloned().collect())
    }

    async fn audit_scan(&self, after: Option<(String, i64)>, limit: u32) -> Result<Vec<AuditRow>> {
        let s = self.lock();
        let mut rows: Vec<&AuditRow> = s
            .audit
            .iter()
            .filter(|a| after.as_ref().is_none_or(|(c, n)| (a.chain.as_str(), a.chain_seq) > (c.as_str(), *n)))
            .collect();
        rows.sort_by(|a, b| (a.chain.as_str(), a.chain_seq).cmp(&(b.chain.as_str(), b.chain_seq)));
        Ok(rows.into_iter().take(limit as usize).cloned().collect())
    }

    async fn stats(&self) -> Result<Stats> {
        let s = self.lock();
        Ok(Stats {
            instances: s.instances.len() as i64,
            running: s.instances.values().filter(|i| i.status != "ended").count() as i64,
            tasks: s.tasks.len() as i64,
            timers: s.timers.len() as i64,
            outbox: s.outbox.len() as i64,
            audit: s.audit.len() as i64,
        })
    }
}
