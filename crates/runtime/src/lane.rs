//! Writer lanes: where commands become committed transitions.
//!
//! Every command for an instance goes to the same lane (by a hash of the instance id), so a
//! lane can keep hot snapshots in memory and never read before it writes. A lane takes
//! whatever is queued (up to the batch size), runs the core for each command in order against
//! its cache plus the batch's own results, writes all the changes in one transaction, and
//! answers each caller only after that commit. SQLite runs one lane (its one writer) with group
//! commit; PostgreSQL runs several, one transaction each.
//!
//! If the batch is refused (another node changed one of its instances, or any write failed),
//! nothing of it was written: the lane forgets the cached snapshots involved and replays each
//! command alone, reloading from the store, a bounded number of times. So two nodes never apply
//! two transitions on the same revision, and a bad command fails alone.

use std::collections::HashMap;
use std::sync::Arc;

use indexmap::IndexMap;
use machine::{Actor, Input, Instance, Rejection};
use model::Process;
use serde_json::json;
use store::{Change, Store, TimerRow};
use tokio::sync::{mpsc, oneshot};

use crate::convert::{self, About, Head};
use crate::error::Error;
use crate::{Applied, Inner, Refused, Reply};

/// How often a command is replayed after conflicting writes before it is given up.
const MAX_REPLAYS: usize = 8;

/// What a command asks for.
#[derive(Debug)]
pub(crate) enum Op {
    /// Start an instance on a definition.
    Start { start: machine::Start, hash: String },
    /// Apply an input to an instance.
    Input { instance: String, input: Input, idempotency_key: Option<String> },
    /// Fire a due timer.
    Fire { timer: TimerRow },
    /// Write a change that belongs to no transition (buffer a message, settle an outbox row).
    Write { lane_key: String, change: Box<Change> },
    /// Move an instance onto another definition along a migration map (`packs::migrate`).
    Migrate { instance: String, to_hash: String, map: IndexMap<String, String>, by: String },
}

impl Op {
    pub(crate) fn lane_key(&self) -> &str {
        match self {
            Op::Start { start, .. } => &start.id,
            Op::Input { instance, .. } => instance,
            Op::Fire { timer } => &timer.instance_id,
            Op::Write { lane_key, .. } => lane_key,
            Op::Migrate { instance, .. } => instance,
        }
    }
}

/// When a refused command still settles its outbox row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settle {
    /// Whatever happens (a duplicate or stale result is simply done).
    Always,
    /// Unless the core rejected the input (the dispatcher handles that case itself).
    UnlessRejected,
}

/// A command with its reply channel.
#[derive(Debug)]
pub(crate) struct Command {
    pub(crate) op: Op,
    /// The outbox row this command completes.
    pub(crate) outbox_done: Option<i64>,
    pub(crate) settle: Settle,
    /// A buffered message consumed if the input is applied.
    pub(crate) buffered: Option<i64>,
    /// Answer with the instance as the command left it ([`Applied::state`]); only callers that
    /// render it ask, so the other commands do not pay for the copy.
    pub(crate) keep_state: bool,
    /// Checked against the instance as it stands before the input is applied.
    pub(crate) gate: Option<crate::Gate>,
    pub(crate) reply: oneshot::Sender<Reply>,
}

impl Command {
    pub(crate) fn new(op: Op) -> (Command, oneshot::Receiver<Reply>) {
        let (tx, rx) = oneshot::channel();
        (
            Command {
                op,
                outbox_done: None,
                settle: Settle::Always,
                buffered: None,
                keep_state: false,
                gate: None,
                reply: tx,
            },
            rx,
        )
    }
}

/// The lane a key goes to (FNV-1a, so it is the same in every process).
pub(crate) fn lane_of(key: &str, n_lanes: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % n_lanes.max(1) as u64) as usize
}

/// An instance as a lane holds it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    instance: Instance,
    head: Head,
    process: Arc<Process>,
}

/// A two-generation cache: lookups promote from the old generation; when the young one is
/// full it becomes the old one. Bounded memory, no bookkeeping per hit.
struct Cache {
    young: HashMap<String, Entry>,
    old: HashMap<String, Entry>,
    capacity: usize,
}

impl Cache {
    fn get(&mut self, id: &str) -> Option<&Entry> {
        if !self.young.contains_key(id) {
            let e = self.old.remove(id)?;
            self.insert(id.to_string(), e);
        }
        self.young.get(id)
    }

    fn insert(&mut self, id: String, e: Entry) {
        if self.young.len() >= self.capacity.max(1) {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(id, e);
    }

    fn remove(&mut self, id: &str) {
        self.young.remove(id);
        self.old.remove(id);
    }
}

/// What a commit task gives back: the outcome, and the changes (for waking the loops).
type CommitResult = (Result<(), store::Error>, Vec<Change>);

/// A batch whose commit is running.
struct InFlight {
    handle: tokio::task::JoinHandle<CommitResult>,
    batch: Pending,
}

/// The commands of a batch being written and their prepared answers (their new states are
/// in [`Lane::pending`]).
struct Pending {
    cmds: Vec<Command>,
    replies: Vec<Option<Reply>>,
}

/// A prepared batch.
#[derive(Default)]
struct Batch {
    changes: Vec<Change>,
    replies: Vec<Option<Reply>>,
    overlay: HashMap<String, Entry>,
}

/// The result of preparing one command.
struct Prepared {
    change: Option<Change>,
    reply: Result<Applied, Refused>,
    /// The instance's new state, cached after commit.
    entry: Option<(String, Entry)>,
}

pub(crate) struct Lane {
    inner: Arc<Inner>,
    cache: Cache,
    /// The new states written by the batch in flight; cached once it commits.
    pending: HashMap<String, Entry>,
    rx: mpsc::Receiver<Command>,
    batch_max: usize,
}

impl Lane {
    pub(crate) fn new(inner: Arc<Inner>, rx: mpsc::Receiver<Command>, batch_max: usize, capacity: usize) -> Lane {
        Lane {
            inner,
            cache: Cache { young: HashMap::new(), old: HashMap::new(), capacity: capacity / 2 },
            pending: HashMap::new(),
            rx,
            batch_max: batch_max.max(1),
        }
    }

    /// Runs until every sender is gone and the queue is drained.
    ///
    /// Group commit, pipelined: while one batch is being written, every command that arrives
    /// is prepared at once on top of its (not yet durable) results and joins the next batch,
    /// up to the batch size; the next batch is written as soon as the previous one committed.
    /// So a batch holds whatever came in during the previous commit, and no command waits for
    /// more than the commit in flight and its own. Callers are answered only after their own
    /// batch committed; if the previous batch fails, the next one is replayed command by
    /// command from the store.
    pub(crate) async fn run(mut self) {
        let mut incoming = Vec::with_capacity(self.batch_max);
        let mut in_flight: Option<InFlight> = None;
        // The batch growing while `in_flight` is written.
        let mut next: Option<(Vec<Command>, Batch)> = None;
        let mut open = true;
        while open || in_flight.is_some() {
            let room = self.batch_max.saturating_sub(next.as_ref().map_or(0, |(cmds, _)| cmds.len()));
            let Some(f) = in_flight.as_mut() else {
                // Idle: wait for work, and write it at once.
                if self.rx.recv_many(&mut incoming, self.batch_max).await == 0 {
                    break;
                }
                let cmds = std::mem::take(&mut incoming);
                let mut batch = Batch::default();
                self.extend(&mut batch, &cmds).await;
                in_flight = Some(self.write(cmds, batch));
                continue;
            };
            let result = if open && room > 0 {
                tokio::select! {
                    n = self.rx.recv_many(&mut incoming, room) => {
                        if n == 0 {
                            open = false;
                        } else {
                            let cmds = std::mem::take(&mut incoming);
                            let (queued, batch) = next.get_or_insert_with(|| (Vec::new(), Batch::default()));
                            self.extend(batch, &cmds).await;
                            queued.extend(cmds);
                        }
                        continue;
                    }
                    result = &mut f.handle => result,
                }
            } else {
                (&mut f.handle).await
            };
            let Some(f) = in_flight.take() else { continue };
            let written = self.finish(f.batch, result).await;
            if let Some((cmds, batch)) = next.take() {
                if written {
                    in_flight = Some(self.write(cmds, batch));
                } else {
                    // Prepared on top of a batch that was not written: do it again, alone.
                    for id in batch.overlay.keys() {
                        self.cache.remove(id);
                    }
                    self.replay_all(cmds, batch.replies).await;
                }
            }
        }
        // The queue is closed and drained, and the last commit is finished: a batch that
        // grew meanwhile was written by the loop, so nothing is left.
        debug_assert!(next.is_none());
    }

    /// Starts writing a prepared batch; its new states become [`Lane::pending`].
    fn write(&mut self, cmds: Vec<Command>, batch: Batch) -> InFlight {
        let store = self.inner.store.clone();
        let changes = batch.changes;
        let handle = tokio::spawn(async move {
            let result = store.commit(&changes).await;
            (result, changes)
        });
        self.pending = batch.overlay;
        InFlight { handle, batch: Pending { cmds, replies: batch.replies } }
    }

    /// Runs the core for each command, in order, against the cache, the batch in flight and
    /// the batch's own results so far, and adds them to the batch.
    async fn extend(&mut self, batch: &mut Batch, cmds: &[Command]) {
        let now = self.inner.clock.now();
        for cmd in cmds {
            match self.prepare(cmd, &mut batch.overlay, false, now).await {
                Ok(p) => {
                    batch.changes.extend(p.change);
                    if let Some((id, e)) = p.entry {
                        batch.overlay.insert(id, e);
                    }
                    batch.replies.push(Some(Ok(p.reply)));
                }
                Err(e) => batch.replies.push(Some(Err(e))),
            }
        }
    }

    /// Completes a batch whose commit returned: caches and answers, or replays its commands
    /// one by one. Returns whether the batch was written.
    async fn finish(&mut self, f: Pending, result: Result<CommitResult, tokio::task::JoinError>) -> bool {
        let (result, changes) = match result {
            Ok((result, changes)) => (result, changes),
            Err(e) => (Err(store::Error::Config(format!("the commit task failed: {e}"))), Vec::new()),
        };
        let written = std::mem::take(&mut self.pending);
        match result {
            Ok(()) => {
                self.inner.after_commit(&changes);
                for (id, e) in written {
                    self.cache.insert(id, e);
                }
                for (cmd, reply) in f.cmds.into_iter().zip(f.replies) {
                    if let Some(r) = reply {
                        let _ = cmd.reply.send(r);
                    }
                }
                true
            }
            Err(err) => {
                if !matches!(err, store::Error::Conflict { .. }) {
                    tracing::warn!("a batch of {} commands failed ({err}); replaying them one by one", f.cmds.len());
                }
                for id in written.keys() {
                    self.cache.remove(id);
                }
                if let store::Error::Conflict { instances } = &err {
                    for id in instances {
                        self.cache.remove(id);
                    }
                }
                self.replay_all(f.cmds, f.replies).await;
                false
            }
        }
    }

    /// Replays commands one by one (a command whose preparation failed fails alone).
    async fn replay_all(&mut self, cmds: Vec<Command>, replies: Vec<Option<Reply>>) {
        for (cmd, reply) in cmds.into_iter().zip(replies) {
            match reply {
                Some(Err(e)) => {
                    let _ = cmd.reply.send(Err(e));
                }
                _ => {
                    let r = self.replay(&cmd).await;
                    let _ = cmd.reply.send(r);
                }
            }
        }
    }

    /// Applies one command in its own transaction, reloading its instance from the store, and
    /// tries again (bounded) while other writers win the race.
    async fn replay(&mut self, cmd: &Command) -> Reply {
        let mut last = String::new();
        for _ in 0..MAX_REPLAYS {
            let now = self.inner.clock.now();
            let mut overlay = HashMap::new();
            let p = self.prepare(cmd, &mut overlay, true, now).await?;
            let changes: Vec<Change> = p.change.into_iter().collect();
            match self.inner.store.commit(&changes).await {
                Ok(()) => {
                    self.inner.after_commit(&changes);
                    if let Some((id, e)) = p.entry {
                        self.cache.insert(id, e);
                    }
                    return Ok(p.reply);
                }
                Err(store::Error::Conflict { instances }) => {
                    for id in &instances {
                        self.cache.remove(id);
                    }
                    last = instances.join(", ");
                    tokio::task::yield_now().await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Contention(last))
    }

    /// The current state of an instance: from this batch, the cache, or the store.
    async fn entry(&mut self, id: &str, overlay: &HashMap<String, Entry>, fresh: bool) -> Result<Option<Entry>, Error> {
        if let Some(e) = overlay.get(id) {
            return Ok(Some(e.clone()));
        }
        if !fresh && let Some(e) = self.pending.get(id) {
            return Ok(Some(e.clone()));
        }
        if !fresh && let Some(e) = self.cache.get(id) {
            return Ok(Some(e.clone()));
        }
        let Some(row) = self.inner.store.instance(id).await? else { return Ok(None) };
        let (instance, head) = convert::instance_of(&row)?;
        let process = self.inner.process(&row.hash).await?;
        Ok(Some(Entry { instance, head, process }))
    }

    async fn prepare(
        &mut self,
        cmd: &Command,
        overlay: &mut HashMap<String, Entry>,
        fresh: bool,
        now: jiff::Timestamp,
    ) -> Result<Prepared, Error> {
        let settle = |refused: &Refused| -> Option<Change> {
            let seq = cmd.outbox_done?;
            if cmd.settle == Settle::UnlessRejected && matches!(refused, Refused::Rejected(_)) {
                return None;
            }
            Some(Change { outbox_done: vec![seq], ..Change::default() })
        };
        let refuse = |refused: Refused, extra: Option<Change>| -> Prepared {
            let mut change = settle(&refused);
            if let Some(x) = extra {
                let c = change.get_or_insert_with(Change::default);
                c.timers_removed.extend(x.timers_removed);
            }
            Prepared { change, reply: Err(refused), entry: None }
        };
        match &cmd.op {
            Op::Write { change, .. } => {
                let mut change = Change::clone(change);
                change.outbox_done.extend(cmd.outbox_done);
                Ok(Prepared { change: Some(change), reply: Ok(Applied::nothing(cmd.op.lane_key())), entry: None })
            }
            Op::Start { start, hash } => {
                let exists = overlay.contains_key(&start.id)
                    || (!fresh && self.pending.contains_key(&start.id))
                    || (!fresh && self.cache.get(&start.id).is_some())
                    || (fresh && self.inner.store.instance(&start.id).await?.is_some());
                if exists {
                    return Ok(refuse(Refused::AlreadyExists(start.id.clone()), None));
                }
                let process = self.inner.process(hash).await?;
                let t = match machine::start(&process, start.clone(), now) {
                    Ok(t) => t,
                    Err(r) => return Ok(refuse(Refused::Rejected(r), None)),
                };
                let about = About {
                    kind: "started",
                    actor: start.by.clone(),
                    step: Some(process.step(process.start).id.clone()),
                    input: json!({ "process": process.id, "version": process.version, "business_key": start.business_key }),
                    idempotency_key: None,
                };
                let (mut change, head) =
                    convert::change_for(&process, None, &t.instance, &t.effects, &t.events, about, now)?;
                change.outbox_done.extend(cmd.outbox_done);
                let applied = Applied::of(&t.instance, t.events, cmd.keep_state);
                let entry = Entry { instance: t.instance, head, process };
                Ok(Prepared { change: Some(change), reply: Ok(applied), entry: Some((start.id.clone(), entry)) })
            }
            Op::Input { instance, input, idempotency_key } => {
                let Some(entry) = self.entry(instance, overlay, fresh).await? else {
                    return Ok(refuse(Refused::NoSuchInstance(instance.clone()), None));
                };
                if let Some(gate) = &cmd.gate
                    && let Err(denied) = (gate.0)(&entry.instance)
                {
                    return Ok(refuse(Refused::Denied(denied), None));
                }
                self.apply(cmd, entry, input, idempotency_key.as_deref(), now, refuse).await
            }
            Op::Migrate { instance, to_hash, map, by } => {
                let Some(entry) = self.entry(instance, overlay, fresh).await? else {
                    return Ok(refuse(Refused::NoSuchInstance(instance.clone()), None));
                };
                let to = self.inner.process(to_hash).await?;
                let moved = match packs::migrate(&entry.instance, &entry.process, &to, map, by, now) {
                    Ok(m) => m,
                    Err(why) => {
                        let reasons = why.iter().map(ToString::to_string).collect();
                        return Ok(refuse(Refused::CannotMigrate(reasons), None));
                    }
                };
                let about = About {
                    kind: "migrated",
                    actor: Actor::User { id: by.clone(), role: None },
                    step: None,
                    input: serde_json::to_value(&moved.record).unwrap_or_default(),
                    idempotency_key: None,
                };
                let (mut change, head) = convert::change_for(
                    &to,
                    Some((&entry.instance, &entry.head)),
                    &moved.instance,
                    &moved.effects,
                    &moved.events,
                    about,
                    now,
                )?;
                change.outbox_done.extend(cmd.outbox_done);
                let id = moved.instance.id.clone();
                let applied = Applied::of(&moved.instance, moved.events, cmd.keep_state);
                let entry = Entry { instance: moved.instance, head, process: to };
                Ok(Prepared { change: Some(change), reply: Ok(applied), entry: Some((id, entry)) })
            }
            Op::Fire { timer } => {
                let stale = || Change { timers_removed: vec![timer.id.clone()], ..Change::default() };
                let Some(entry) = self.entry(&timer.instance_id, overlay, fresh).await? else {
                    return Ok(refuse(Refused::NoSuchInstance(timer.instance_id.clone()), Some(stale())));
                };
                let input = Input::TimerFired { timer: timer.id.clone() };
                let mut p = self.apply(cmd, entry, &input, None, now, refuse).await?;
                if p.reply.is_err() {
                    // A timer the instance no longer has (it ended, or the step was left in
                    // a transaction that lost the timer row's delete): drop the row.
                    p.change.get_or_insert_with(Change::default).timers_removed.push(timer.id.clone());
                }
                Ok(p)
            }
        }
    }

    async fn apply(
        &mut self,
        cmd: &Command,
        entry: Entry,
        input: &Input,
        idempotency_key: Option<&str>,
        now: jiff::Timestamp,
        refuse: impl Fn(Refused, Option<Change>) -> Prepared,
    ) -> Result<Prepared, Error> {
        let t = match machine::step(&entry.process, &entry.instance, input, now) {
            Ok(t) => t,
            Err(Rejection::NoSuchTask(task)) => {
                // The instance exists, so the task was there once: someone completed it or
                // its step was left. With the caller's idempotency key, a retry of a
                // completion that did happen is answered as it was the first time.
                if let Some(key) = idempotency_key
                    && let Some(applied) = self.find_by_key(&entry.instance.id, key).await?
                {
                    return Ok(Prepared { change: None, reply: Ok(applied), entry: None });
                }
                return Ok(refuse(Refused::TaskGone { task }, None));
            }
            Err(r) => return Ok(refuse(Refused::Rejected(r), None)),
        };
        if t.events.is_empty() && t.instance.revision == entry.instance.revision {
            // Nothing happened (e.g. claiming one's own task again): nothing to write.
            let change = cmd.outbox_done.map(|seq| Change { outbox_done: vec![seq], ..Change::default() });
            return Ok(Prepared { change, reply: Ok(Applied::of(&t.instance, t.events, cmd.keep_state)), entry: None });
        }
        let about = convert::describe(&entry.process, &entry.instance, input, idempotency_key);
        let (mut change, head) = convert::change_for(
            &entry.process,
            Some((&entry.instance, &entry.head)),
            &t.instance,
            &t.effects,
            &t.events,
            about,
            now,
        )?;
        change.outbox_done.extend(cmd.outbox_done);
        change.buffered_taken.extend(cmd.buffered);
        let id = t.instance.id.clone();
        let applied = Applied::of(&t.instance, t.events, cmd.keep_state);
        let entry = Entry { instance: t.instance, head, process: entry.process };
        Ok(Prepared { change: Some(change), reply: Ok(applied), entry: Some((id, entry)) })
    }

    /// The earlier application of a command with this idempotency key, from the audit chain.
    async fn find_by_key(&self, instance: &str, key: &str) -> Result<Option<Applied>, Error> {
        for row in self.inner.store.audit_chain(instance).await?.into_iter().rev() {
            let Ok(entry) = serde_json::from_str::<serde_json::Value>(&row.entry) else { continue };
            if entry.get("idempotency_key").and_then(|k| k.as_str()) == Some(key) {
                let events =
                    entry.get("events").cloned().and_then(|e| serde_json::from_value(e).ok()).unwrap_or_default();
                let revision = entry.get("revision").and_then(serde_json::Value::as_u64).unwrap_or_default();
                return Ok(Some(Applied {
                    instance: instance.to_string(),
                    revision,
                    events,
                    ended: false,
                    duplicate: true,
                    state: None,
                }));
            }
        }
        Ok(None)
    }
}
