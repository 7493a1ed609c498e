//! The durable runtime of sopflow: the tokio shell around the pure core.
//!
//! It drives [`machine`] with commands (start, claim, complete, a timer due, an action's
//! answer), persists each transition through the [`store`] port in **one transaction**
//! (instance snapshot, task and timer projections, outbox, audit entry), and only then
//! performs the effects from the outbox, feeding their results back as inputs.
//!
//! # API
//!
//! - [`Runtime::open`] (a [`Config`] with a database URL) and [`Runtime::shutdown`].
//! - [`Runtime::deploy`]: store definitions by content hash and make them current for a
//!   dealer (or every dealer); re-deploying identical content is a no-op.
//! - [`Runtime::start`], [`Runtime::claim`], [`Runtime::unclaim`], [`Runtime::delegate`],
//!   [`Runtime::complete`] (with an optional idempotency key), [`Runtime::deliver_message`],
//!   [`Runtime::cancel`], [`Runtime::retry_incident`], [`Runtime::skip_incident`]: each answers
//!   after its transition is durable, with `Ok(Ok(`[`Applied`]`))`, or `Ok(Err(`[`Refused`]`))`
//!   when the core refused it or someone else was first (nothing changed), or `Err(`[`Error`]`)`
//!   when the engine or database failed.
//! - [`Runtime::publish_pack`], [`Runtime::install_pack`], [`Runtime::compliance`]: pack
//!   distribution ([`distribution`]).
//! - Reads: [`Runtime::instance`], [`Runtime::audit`], [`Runtime::verify_audit`],
//!   [`Runtime::inbox_page`].
//!
//! # Inside
//!
//! Commands go to writer lanes (`lane`): SQLite has one lane that commits batches (group
//! commit), PostgreSQL several. A timer loop takes due timers in order (leased, `SKIP LOCKED`
//! on PostgreSQL) and fires each in the same transaction that deletes its row, so a timer fires
//! once across crashes and nodes. An outbox dispatcher performs effects at least once; each
//! result is applied in the same transaction that deletes its outbox row, and duplicates are
//! refused by the core as stale, so an effect's result is applied once.
//!
//! Architecture invariant: the runtime never reads the system time except through the
//! [`Clock`] port, never decides a transition itself (the core does), and never writes outside
//! a store transaction.

mod actions;
mod clock;
mod convert;
pub mod distribution;
mod error;
mod external;
mod lane;
mod loops;
pub mod pack_plugins;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use indexmap::IndexMap;
use jiff::SignedDuration;
use machine::{Actor, Event, Input, Instance, Rejection, Start, User};
use model::Process;
use serde_json::{Map, Value, json};
use store::audit::{Draft, Verifier};
use store::{AuditRow, BufferedMessage, Change, DefinitionRow, InboxQuery, Store, TaskRow};
pub use store_sqlx::AnyStore;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

pub use actions::{ActionRegistry, BadSchema};
pub use clock::{Clock, SystemClock, VirtualClock, Wait};
pub use error::Error;
pub use external::{JobError, TopicSchemas, WorkerFailure, attempt_of, job_id, topic_of};
pub use pack_plugins::{PackPlugins, PluginSet};
pub use plugins::external::ExternalJob;

use crate::clock::ms;
use crate::lane::{Command, Lane, Op, Settle, lane_of};

/// What a command answers: applied, refused (a value), or a failure of the engine.
pub type Reply = Result<Result<Applied, Refused>, Error>;

/// How the writer commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommitMode {
    /// Many commands per transaction (group commit); each caller is answered after its batch
    /// is durable.
    #[default]
    Batch,
    /// One command per transaction.
    Single,
}

/// How to run.
#[derive(Clone)]
pub struct Config {
    /// `sqlite://data/sopflow.db`, `postgres://...`, or `memory:`.
    pub database_url: String,
    /// How to open the store.
    pub store: store_sqlx::Options,
    /// Batches or single commits.
    pub commit: CommitMode,
    /// The most commands one batch carries.
    pub batch_max: usize,
    /// Writer lanes; default 1 on SQLite and memory, the pool size on PostgreSQL.
    pub lanes: Option<usize>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The actions the outbox may invoke.
    pub actions: ActionRegistry,
    /// The external task topics (`topic:<t>` actions) with their input and output schemas.
    pub topics: TopicSchemas,
    /// This engine node's name in leases (default: a fresh id).
    pub node_id: Option<String>,
    /// How long a taken timer or outbox row is reserved for this node.
    pub lease: SignedDuration,
    /// How often the loops look for work written by other nodes (real time).
    pub poll: Duration,
    /// Fire timers.
    pub run_timers: bool,
    /// Dispatch the outbox.
    pub run_outbox: bool,
    /// An action that takes longer fails (retryable).
    pub action_timeout: Duration,
    /// Actions running at once.
    pub action_concurrency: usize,
    /// Instance snapshots cached per lane.
    pub cache_capacity: usize,
    /// How stored definitions are compiled again after a restart.
    pub model: model::Options,
    /// Where the plugins packs bring are kept: with it, publishing and installing a pack that
    /// has `plugins/` loads them (see [`pack_plugins`]); without it, such a pack is refused.
    pub pack_plugins: Option<Arc<PackPlugins>>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &self.database_url)
            .field("commit", &self.commit)
            .field("batch_max", &self.batch_max)
            .field("lanes", &self.lanes)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Defaults for a database URL: system clock, built-in actions, batched commits.
    pub fn new(database_url: impl Into<String>) -> Config {
        Config {
            database_url: database_url.into(),
            store: store_sqlx::Options::default(),
            commit: CommitMode::Batch,
            batch_max: 512,
            lanes: None,
            clock: Arc::new(SystemClock),
            actions: ActionRegistry::with_builtins(),
            topics: TopicSchemas::new(),
            node_id: None,
            lease: SignedDuration::from_secs(60),
            poll: Duration::from_secs(1),
            run_timers: true,
            run_outbox: true,
            action_timeout: Duration::from_secs(30),
            action_concurrency: 16,
            cache_capacity: 200_000,
            model: model::Options::default(),
            pack_plugins: None,
        }
    }
}

/// An accepted command.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The instance.
    pub instance: String,
    /// Its revision afterwards.
    pub revision: u64,
    /// What happened.
    pub events: Vec<Event>,
    /// Whether the instance has ended.
    pub ended: bool,
    /// The command repeated an earlier one with the same idempotency key; nothing new
    /// happened.
    pub duplicate: bool,
    /// The instance as the command left it, for the commands that ask for it (a completion; not
    /// a duplicate): callers that answer with the instance need not read it back from the store.
    pub state: Option<Arc<Instance>>,
}

impl Applied {
    fn of(instance: &Instance, events: Vec<Event>, keep_state: bool) -> Applied {
        Applied {
            instance: instance.id.clone(),
            revision: instance.revision,
            events,
            ended: instance.is_ended(),
            duplicate: false,
            state: keep_state.then(|| Arc::new(instance.clone())),
        }
    }

    fn nothing(instance: &str) -> Applied {
        Applied {
            instance: instance.into(),
            revision: 0,
            events: Vec::new(),
            ended: false,
            duplicate: false,
            state: None,
        }
    }
}

/// Why a command changed nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refused {
    /// The core refused the input.
    #[error(transparent)]
    Rejected(Rejection),
    /// The task was already completed or cancelled (someone else was first).
    #[error("the task `{task}` was already completed or cancelled")]
    TaskGone {
        /// The task.
        task: String,
    },
    /// No such instance.
    #[error("there is no instance `{0}`")]
    NoSuchInstance(String),
    /// The instance cannot move onto the new version; every reason.
    #[error("the instance cannot be moved: {}", .0.join("; "))]
    CannotMigrate(Vec<String>),
    /// No deployment of the process for the dealer.
    #[error("the process `{process}` is not deployed for dealer `{dealer}`")]
    NotDeployed {
        /// The dealer.
        dealer: String,
        /// The process.
        process: String,
    },
    /// An instance with this id exists.
    #[error("the instance `{0}` already exists")]
    AlreadyExists(String),
    /// The caller's [`Gate`] refused.
    #[error(transparent)]
    Denied(Denied),
}

/// Why a [`Gate`] refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The caller may not know the instance or the task exists.
    #[error("not found")]
    Hidden,
    /// The caller sees it but may not act on it.
    #[error("{0}")]
    Forbidden(String),
    /// The command does not fit the instance as it stands (e.g. the task is no longer open).
    #[error("{0}")]
    Conflict(String),
}

/// A check a caller hands in with a command, made in the writer lane against the instance as
/// it stands, before the input is applied: the server's authorisation of a task completion,
/// without reading the task before sending the command.
#[derive(Clone)]
pub struct Gate(pub Arc<GateFn>);

/// The function of a [`Gate`].
pub type GateFn = dyn Fn(&Instance) -> Result<(), Denied> + Send + Sync;

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}

/// The result of deploying one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployOutcome {
    /// The process.
    pub process_id: String,
    /// Its content hash.
    pub hash: String,
    /// Its version number.
    pub version: u32,
    /// Whether this deployment changed anything (false: identical content was current).
    pub new: bool,
}

/// Starting an instance.
#[derive(Debug, Clone, PartialEq)]
pub struct StartRequest {
    /// The dealer.
    pub dealer: String,
    /// The process; the newest deployment for the dealer is used.
    pub process_id: String,
    /// The start data.
    pub data: Map<String, Value>,
    /// A business key.
    pub business_key: Option<String>,
    /// Who starts it.
    pub by: Actor,
    /// The instance id; default: a fresh time-ordered id. Starting twice with one id starts
    /// once.
    pub id: Option<String>,
}

/// An instance with the process it runs on.
#[derive(Debug, Clone)]
pub struct InstanceView {
    /// The state.
    pub instance: Instance,
    /// The definition.
    pub process: Arc<Process>,
}

/// Where a message went.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivered {
    /// To these instances.
    To(Vec<String>),
    /// Nobody waited: kept for the next instance that does.
    Buffered,
}

/// What `verify_audit` found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditReport {
    /// Chains checked.
    pub chains: u64,
    /// Entries checked.
    pub entries: u64,
    /// The first broken entry of each broken chain.
    pub broken: Vec<store::audit::Broken>,
}

/// What the runtime's parts share.
pub(crate) struct Inner {
    pub(crate) store: AnyStore,
    pub(crate) clock: Arc<dyn Clock>,
    /// The actions and how definitions are compiled: replaced together when a pack brings
    /// plugins.
    plugged: RwLock<Plugged>,
    /// Jobs of `topic:` actions, waiting for external workers.
    pub(crate) external: external::Jobs,
    pub(crate) node: String,
    pub(crate) config: Config,
    processes: Mutex<HashMap<String, Arc<Process>>>,
    lanes: Mutex<Option<Vec<mpsc::Sender<Command>>>>,
    n_lanes: usize,
    /// Wakes the timer loop when a timer earlier than its planned wake-up is armed.
    pub(crate) timers_wake: Notify,
    /// When the timer loop plans to wake up next (ms; `i64::MAX`: not planned).
    pub(crate) timers_next: AtomicI64,
    /// Wakes the outbox dispatcher when rows were queued.
    pub(crate) outbox_wake: Notify,
    pub(crate) stop: watch::Sender<bool>,
}

/// The plugins in use.
#[derive(Clone)]
pub(crate) struct Plugged {
    pub(crate) actions: Arc<ActionRegistry>,
    pub(crate) model: Arc<model::Options>,
}

impl Inner {
    /// The actions the outbox may invoke now.
    pub(crate) fn actions(&self) -> Arc<ActionRegistry> {
        Arc::clone(&self.plugged.read().unwrap_or_else(PoisonError::into_inner).actions)
    }

    /// How definitions are compiled now.
    pub(crate) fn model(&self) -> Arc<model::Options> {
        Arc::clone(&self.plugged.read().unwrap_or_else(PoisonError::into_inner).model)
    }

    /// A definition by hash, compiled once and kept.
    pub(crate) async fn process(&self, hash: &str) -> Result<Arc<Process>, Error> {
        if let Some(p) = self.lock_processes().get(hash) {
            return Ok(Arc::clone(p));
        }
        let Some(def) = self.store.definition(hash).await? else {
            return Err(Error::Definition { hash: hash.into(), message: "no such definition is stored".into() });
        };
        let doc: Value = serde_json::from_str(&def.document)
            .map_err(|source| Error::Decode { what: format!("definition {hash}"), source })?;
        let process = model::compile_document(&doc, &self.model()).map_err(|d| Error::Definition {
            hash: hash.into(),
            message: d.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        })?;
        if process.hash.0 != hash {
            return Err(Error::Definition {
                hash: hash.into(),
                message: format!("the stored document now hashes to {}", process.hash),
            });
        }
        let process = Arc::new(process);
        self.lock_processes().insert(hash.to_string(), Arc::clone(&process));
        Ok(process)
    }

    fn lock_processes(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Process>>> {
        self.processes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a command on its lane (waiting for room: the lane's queue is bounded, which
    /// slows callers down instead of growing memory).
    pub(crate) async fn submit(&self, cmd: Command) -> Result<(), Error> {
        let sender = {
            let lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(lanes) = lanes.as_ref() else { return Err(Error::ShuttingDown) };
            lanes[lane_of(cmd.op.lane_key(), self.n_lanes)].clone()
        };
        sender.send(cmd).await.map_err(|_| Error::ShuttingDown)
    }

    /// Queues a command and waits for its answer.
    pub(crate) async fn call(&self, op: Op) -> Reply {
        self.call_with(op, None, Settle::Always, None).await
    }

    pub(crate) async fn call_with(
        &self,
        op: Op,
        outbox_done: Option<i64>,
        settle: Settle,
        buffered: Option<i64>,
    ) -> Reply {
        let (mut cmd, rx) = Command::new(op);
        cmd.outbox_done = outbox_done;
        cmd.settle = settle;
        cmd.buffered = buffered;
        self.submit(cmd).await?;
        rx.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Wakes the loops that have new work after a commit.
    pub(crate) fn after_commit(&self, changes: &[Change]) {
        let earliest = changes.iter().flat_map(|c| &c.timers_set).map(|t| t.fire_at).min();
        if let Some(at) = earliest
            && at < self.timers_next.load(Ordering::Acquire)
        {
            self.timers_next.fetch_min(at, Ordering::AcqRel);
            self.timers_wake.notify_one();
        }
        if changes.iter().any(|c| !c.outbox.is_empty()) {
            self.outbox_wake.notify_one();
        }
    }

    /// Routes a message to the dealer's instances waiting for it, or buffers it.
    pub(crate) async fn route(
        &self,
        dealer: &str,
        name: &str,
        key: Option<&str>,
        payload: &Value,
        outbox_done: Option<i64>,
        lane_key: &str,
    ) -> Result<Delivered, Error> {
        let subscribers = self.store.subscribers(dealer, name, key).await?;
        if subscribers.is_empty() {
            let change = Change {
                buffered: vec![BufferedMessage {
                    id: 0,
                    dealer: dealer.into(),
                    name: name.into(),
                    key: key.map(str::to_string),
                    payload: payload.to_string(),
                    at: ms(self.clock.now()),
                }],
                ..Change::default()
            };
            self.call_with(
                Op::Write { lane_key: lane_key.into(), change: Box::new(change) },
                outbox_done,
                Settle::Always,
                None,
            )
            .await?
            .ok();
            // An instance may have subscribed between the look-up and the buffering, and
            // checked the buffer before the message was in it. Its subscription is committed
            // before its check, the buffer before this look-up, so one of the two sees the
            // other: deliver now if someone waits.
            for instance in self.store.subscribers(dealer, name, key).await? {
                let Some(m) = self.store.buffered_message(dealer, name, key).await? else { break };
                let input = Input::Message { name: name.into(), key: m.key.clone(), payload: payload.clone() };
                let op = Op::Input { instance: instance.clone(), input, idempotency_key: None };
                if self.call_with(op, None, Settle::Always, Some(m.id)).await?.is_ok() {
                    return Ok(Delivered::To(vec![instance]));
                }
            }
            return Ok(Delivered::Buffered);
        }
        let mut delivered = Vec::new();
        let last = subscribers.len() - 1;
        for (i, instance) in subscribers.into_iter().enumerate() {
            let input = Input::Message { name: name.into(), key: key.map(str::to_string), payload: payload.clone() };
            // The outbox row is settled with the last delivery: after a crash all are
            // delivered again and the ones already done are refused as not waiting.
            let done = if i == last { outbox_done } else { None };
            let op = Op::Input { instance: instance.clone(), input, idempotency_key: None };
            if self.call_with(op, done, Settle::Always, None).await?.is_ok() {
                delivered.push(instance);
            }
        }
        Ok(Delivered::To(delivered))
    }
}

/// The instance a task, timer, job or incident id belongs to (`<instance>-<letter><n>`).
pub fn instance_of(id: &str) -> &str {
    id.rsplit_once('-').map_or(id, |(instance, _)| instance)
}

/// The running engine.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    lane_tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("node", &self.inner.node).field("store", &self.inner.store.backend()).finish()
    }
}

impl Runtime {
    /// Opens the database (running migrations) and starts the lanes and loops.
    pub async fn open(config: Config) -> Result<Runtime, Error> {
        let store = store_sqlx::open(&config.database_url, &config.store).await?;
        Runtime::with_store(store, config).await
    }

    /// Starts on an already open store.
    pub async fn with_store(store: AnyStore, config: Config) -> Result<Runtime, Error> {
        if !store.is_shared() {
            // One node owns this store: leases left by a previous process (which crashed or
            // was stopped) would only delay its timers and effects.
            store.release_leases().await?;
        }
        let n_lanes =
            config.lanes.unwrap_or(if store.is_shared() { config.store.max_connections.max(1) as usize } else { 1 });
        let batch_max = match config.commit {
            CommitMode::Batch => config.batch_max.max(1),
            CommitMode::Single => 1,
        };
        let (stop, _) = watch::channel(false);
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        for _ in 0..n_lanes {
            let (tx, rx) = mpsc::channel(batch_max * 4);
            senders.push(tx);
            receivers.push(rx);
        }
        let external = external::Jobs::new(store_sqlx::AnyJobStore::for_store(&store), config.topics.clone());
        let inner = Arc::new(Inner {
            store,
            clock: Arc::clone(&config.clock),
            plugged: RwLock::new(Plugged {
                actions: Arc::new(config.actions.clone()),
                model: Arc::new(config.model.clone()),
            }),
            external,
            node: config.node_id.clone().unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string()),
            processes: Mutex::new(HashMap::new()),
            lanes: Mutex::new(Some(senders)),
            n_lanes,
            timers_wake: Notify::new(),
            timers_next: AtomicI64::new(i64::MAX),
            outbox_wake: Notify::new(),
            stop,
            config,
        });
        let lane_tasks = receivers
            .into_iter()
            .map(|rx| {
                let lane = Lane::new(Arc::clone(&inner), rx, batch_max, inner.config.cache_capacity);
                tokio::spawn(lane.run())
            })
            .collect();
        let mut tasks = Vec::new();
        if inner.config.run_timers {
            tasks.push(tokio::spawn(loops::timers(Arc::clone(&inner))));
        }
        if inner.config.run_outbox {
            tasks.push(tokio::spawn(loops::outbox(Arc::clone(&inner))));
        }
        Ok(Runtime { inner, tasks: Arc::new(Mutex::new(tasks)), lane_tasks: Arc::new(Mutex::new(lane_tasks)) })
    }

    /// The store.
    pub fn store(&self) -> &AnyStore {
        &self.inner.store
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// How definitions are compiled (the actions and guard sandbox this engine offers).
    pub fn model_options(&self) -> Arc<model::Options> {
        self.inner.model()
    }

    /// The plugins packs bring, when the engine keeps them.
    pub fn pack_plugins(&self) -> Option<&Arc<PackPlugins>> {
        self.inner.config.pack_plugins.as_ref()
    }

    /// Swaps in another set of plugins: the outbox invokes its actions from now on, and
    /// definitions compiled from now on use its action names and guard helpers.
    pub fn use_plugins(&self, set: &PluginSet) {
        let mut plugged = self.inner.plugged.write().unwrap_or_else(PoisonError::into_inner);
        *plugged = Plugged { actions: Arc::clone(&set.actions), model: Arc::clone(&set.model) };
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.inner.node
    }

    /// Stores each process by content hash and makes it the current version for `dealer`
    /// (`""`: every dealer without a version of its own). Running instances keep the version
    /// they started on. Deploying identical content again changes nothing. Each change is
    /// recorded in the audit chain `dealer:<dealer>` (`dealer:*` for every dealer).
    pub async fn deploy(
        &self,
        processes: &[Arc<Process>],
        dealer: &str,
        by: Actor,
    ) -> Result<Vec<DeployOutcome>, Error> {
        let now = ms(self.inner.clock.now());
        let mut out = Vec::new();
        for p in processes {
            let def = DefinitionRow {
                hash: p.hash.0.clone(),
                process_id: p.id.clone(),
                version: i64::from(p.version),
                pack_id: p.pack.as_ref().map(|x| x.id.clone()),
                pack_version: p.pack.as_ref().map(|x| x.version.clone()),
                document: p.document.to_string(),
                deployed_at: now,
            };
            self.inner.store.put_definition(&def).await?;
            let new = self.inner.store.deploy(dealer, &p.id, &p.hash.0, now).await?;
            self.inner.lock_processes().insert(p.hash.0.clone(), Arc::clone(p));
            if new {
                let chain = format!("dealer:{}", if dealer.is_empty() { "*" } else { dealer });
                let draft = Draft {
                    chain,
                    actor: serde_json::to_value(&by).unwrap_or(Value::Null),
                    kind: "deployed".into(),
                    step: None,
                    entry: json!({ "process": p.id, "version": p.version, "hash": p.hash.0,
                        "pack": p.pack.as_ref().map(|x| json!({ "id": x.id, "version": x.version })) }),
                    definition_hash: Some(p.hash.0.clone()),
                };
                self.inner.store.append_audit(draft, now).await?;
            }
            out.push(DeployOutcome { process_id: p.id.clone(), hash: p.hash.0.clone(), version: p.version, new });
        }
        Ok(out)
    }

    /// Starts an instance of the newest deployment of a process for the dealer.
    pub async fn start(&self, req: StartRequest) -> Reply {
        let Some(hash) = self.inner.store.current_deployment(&req.dealer, &req.process_id).await? else {
            return Ok(Err(Refused::NotDeployed { dealer: req.dealer, process: req.process_id }));
        };
        let id = req.id.unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
        let start =
            Start { id, dealer: req.dealer, business_key: req.business_key, data: req.data, by: req.by, parent: None };
        self.inner.call(Op::Start { start, hash }).await
    }

    /// Applies any input to an instance.
    pub async fn input(&self, instance: &str, input: Input) -> Reply {
        self.inner.call(Op::Input { instance: instance.into(), input, idempotency_key: None }).await
    }

    /// A user takes a task.
    pub async fn claim(&self, task: &str, by: User) -> Reply {
        self.input(instance_of(task), Input::Claim { task: task.into(), by }).await
    }

    /// A user gives a task back to the pool.
    pub async fn unclaim(&self, task: &str, by: User) -> Reply {
        self.input(instance_of(task), Input::Unclaim { task: task.into(), by }).await
    }

    /// A user hands a task to another user.
    pub async fn delegate(&self, task: &str, by: User, to: User) -> Reply {
        self.input(instance_of(task), Input::Delegate { task: task.into(), by, to }).await
    }

    /// A user completes a task. With an idempotency key, repeating the call after it
    /// succeeded answers the first result again (marked `duplicate`).
    pub async fn complete(&self, task: &str, by: User, form: Value, idempotency_key: Option<String>) -> Reply {
        self.complete_gated(task, by, form, idempotency_key, None).await
    }

    /// As [`Runtime::complete`], refused with [`Refused::Denied`] when `gate` refuses the
    /// instance as it stands.
    pub async fn complete_gated(
        &self,
        task: &str,
        by: User,
        form: Value,
        idempotency_key: Option<String>,
        gate: Option<Gate>,
    ) -> Reply {
        let input = Input::Complete { task: task.into(), by, form };
        let (mut cmd, rx) = Command::new(Op::Input { instance: instance_of(task).into(), input, idempotency_key });
        cmd.keep_state = true;
        cmd.gate = gate;
        self.inner.submit(cmd).await?;
        rx.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Delivers a message from outside to the dealer's instances waiting for it, or buffers it.
    pub async fn deliver_message(
        &self,
        dealer: &str,
        name: &str,
        key: Option<&str>,
        payload: Value,
    ) -> Result<Delivered, Error> {
        let lane_key = format!("message:{dealer}");
        self.inner.route(dealer, name, key, &payload, None, &lane_key).await
    }

    /// Cancels an instance.
    pub async fn cancel(&self, instance: &str, by: Actor, reason: &str) -> Reply {
        self.input(instance, Input::Cancel { by, reason: reason.into() }).await
    }

    /// Retries what an incident stopped.
    pub async fn retry_incident(&self, incident: &str, by: User) -> Reply {
        self.input(instance_of(incident), Input::RetryIncident { incident: incident.into(), by }).await
    }

    /// Moves a running instance onto the deployed definition `to_hash` of its process, along
    /// `map` (old step -> new step; steps not named keep their id), by an operator. The move is
    /// one transition with its audit entry (`migrated`, the record of what moved); refused with
    /// every reason when a token's step has no place on the new version or the data does not fit.
    pub async fn migrate_instance(
        &self,
        instance: &str,
        to_hash: &str,
        map: IndexMap<String, String>,
        by: &str,
    ) -> Reply {
        let op = Op::Migrate { instance: instance.into(), to_hash: to_hash.into(), map, by: by.into() };
        self.inner.call(op).await
    }

    /// Skips the step an incident stopped.
    pub async fn skip_incident(&self, incident: &str, by: User) -> Reply {
        self.input(instance_of(incident), Input::SkipIncident { incident: incident.into(), by }).await
    }

    /// A deployed definition by hash (compiled once and kept).
    pub async fn process(&self, hash: &str) -> Result<Arc<Process>, Error> {
        self.inner.process(hash).await
    }

    /// An instance as stored, with its process.
    pub async fn instance(&self, id: &str) -> Result<Option<InstanceView>, Error> {
        let Some(row) = self.inner.store.instance(id).await? else { return Ok(None) };
        let (instance, _) = convert::instance_of(&row)?;
        let process = self.inner.process(&row.hash).await?;
        Ok(Some(InstanceView { instance, process }))
    }

    /// A task as the inbox shows it.
    pub async fn task(&self, id: &str) -> Result<Option<TaskRow>, Error> {
        Ok(self.inner.store.task(id).await?)
    }

    /// An audit chain (an instance id, or `dealer:<id>`), in order.
    pub async fn audit(&self, chain: &str) -> Result<Vec<AuditRow>, Error> {
        Ok(self.inner.store.audit_chain(chain).await?)
    }

    /// Verifies every audit chain.
    pub async fn verify_audit(&self) -> Result<AuditReport, Error> {
        verify(&self.inner.store).await
    }

    /// One page of a user's inbox.
    pub async fn inbox_page(&self, query: &InboxQuery) -> Result<Vec<TaskRow>, Error> {
        Ok(self.inner.store.inbox_page(query).await?)
    }

    /// Stops the loops, lets the lanes finish what is queued, and closes the store.
    pub async fn shutdown(&self) {
        self.inner.stop.send_replace(true);
        self.inner.timers_wake.notify_one();
        self.inner.outbox_wake.notify_one();
        let loops: Vec<JoinHandle<()>> = std::mem::take(&mut *lock(&self.tasks));
        for t in loops {
            let _ = t.await;
        }
        lock(&self.inner.lanes).take();
        let lanes: Vec<JoinHandle<()>> = std::mem::take(&mut *lock(&self.lane_tasks));
        for t in lanes {
            let _ = t.await;
        }
        self.inner.store.close().await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Verifies every audit chain of a store, page by page.
pub async fn verify<S: Store>(store: &S) -> Result<AuditReport, Error> {
    let mut v = Verifier::new();
    let mut after: Option<(String, i64)> = None;
    loop {
        let rows = store.audit_scan(after.clone(), 5_000).await?;
        let Some(last) = rows.last() else { break };
        after = Some((last.chain.clone(), last.chain_seq));
        for r in &rows {
            v.push(r);
        }
    }
    Ok(AuditReport { chains: v.n_chains, entries: v.n_entries, broken: v.broken })
}
