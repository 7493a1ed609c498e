//! What every handler shares: the runtime, the directory, the catalogue of deployed processes
//! and roles, the metrics, and (in test mode) the virtual clock.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use model::{Label, Process};
use runtime::{Runtime, VirtualClock};
use store::org::OrgStore;
use store_sqlx::AnyOrgStore;

use crate::auth::{Principal, token_hash};
use crate::dto::{Lang, OrgKind};
use crate::error::Error;
use crate::metrics::Metrics;

/// How long an authenticated token is trusted without reading the directory again: a token
/// revoked (or a user changed) by another process stops working within this time; through this
/// server, at once.
pub const AUTH_TTL: Duration = Duration::from_secs(2);

/// Cached authentications at most (the cache is emptied when full).
const AUTH_CACHE_MAX: usize = 10_000;

/// The processes the server deployed and the role catalogue of their packs.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    processes: BTreeMap<String, Arc<Process>>,
    roles: BTreeMap<String, Label>,
}

impl Catalogue {
    /// An empty catalogue.
    pub fn new() -> Catalogue {
        Catalogue::default()
    }

    /// Adds the roles of a pack's catalogue (`pack.yaml`'s `roles:`).
    pub fn add_roles<'a>(&mut self, roles: impl IntoIterator<Item = (&'a String, &'a Label)>) {
        for (id, label) in roles {
            self.roles.entry(id.clone()).or_insert_with(|| label.clone());
        }
    }

    /// Adds a deployed process (and the roles it names).
    pub fn add_process(&mut self, process: Arc<Process>) {
        self.add_roles(process.roles.iter());
        self.processes.insert(process.id.clone(), process);
    }

    /// The deployed processes, by id.
    pub fn processes(&self) -> &BTreeMap<String, Arc<Process>> {
        &self.processes
    }

    /// A process by id.
    pub fn process(&self, id: &str) -> Option<&Arc<Process>> {
        self.processes.get(id)
    }

    /// The role catalogue, by id.
    pub fn roles(&self) -> &BTreeMap<String, Label> {
        &self.roles
    }

    /// The title of a process (its id when it is not in the catalogue).
    pub fn process_title(&self, id: &str) -> Label {
        self.processes
            .get(id)
            .map(|p| p.title.clone())
            .unwrap_or_else(|| Label { zh: Some(id.to_string()), en: Some(id.to_string()) })
    }
}

/// Settings of the server.
#[derive(Debug, Clone)]
pub struct Options {
    /// The runtime's clock, when it is virtual: enables `POST /api/v1/test/clock`.
    pub virtual_clock: Option<Arc<VirtualClock>>,
    /// How long a token issued by a password login works.
    pub login_ttl: SignedDuration,
    /// How long an idempotency key is remembered.
    pub idempotency_ttl: SignedDuration,
    /// The publisher keys whose pack archives are accepted (`sopflow serve --trust`); none:
    /// publishing and installing are refused.
    pub trusted_keys: Vec<packs::PublicKey>,
    /// The roles whose holders manage their dealer: they read every task of it, its workload
    /// and its KPIs (`sopflow serve --manager-roles`).
    pub manager_roles: Vec<String>,
    /// Told of every archive a dealer installs, after it is recorded and deployed, so that what
    /// the engine keeps beside the definitions (the notification templates) follows it.
    pub on_install: Option<InstallHook>,
}

/// What [`Options::on_install`] runs: given the installed archive; an error is logged (the
/// installation stands).
#[derive(Clone)]
pub struct InstallHook(pub Arc<InstallFn>);

/// The function of an [`InstallHook`].
pub type InstallFn = dyn Fn(&packs::Archive) -> Result<(), String> + Send + Sync;

impl std::fmt::Debug for InstallHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InstallHook")
    }
}

/// The manager roles of the standard pack's role catalogue.
pub const DEFAULT_MANAGER_ROLES: &[&str] = &["after_sales_manager", "general_manager", "front_desk_supervisor"];

impl Default for Options {
    fn default() -> Options {
        Options {
            virtual_clock: None,
            login_ttl: SignedDuration::from_hours(12),
            idempotency_ttl: SignedDuration::from_hours(24),
            trusted_keys: Vec::new(),
            manager_roles: DEFAULT_MANAGER_ROLES.iter().map(|r| r.to_string()).collect(),
            on_install: None,
        }
    }
}

/// The shared state of the router.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    /// Recently authenticated tokens (by hash), so a burst of requests reads the directory
    /// once: entries live [`AUTH_TTL`], and any change made through this server clears them.
    auth_cache: Mutex<HashMap<String, (Principal, Instant)>>,
    runtime: Runtime,
    org: AnyOrgStore,
    /// Replaced whole (never edited in place) when an installed pack brings roles or processes
    /// it did not have, so a reader keeps a consistent catalogue for its whole request.
    catalogue: RwLock<Arc<Catalogue>>,
    metrics: Metrics,
    options: Options,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("runtime", &self.inner.runtime).finish_non_exhaustive()
    }
}

impl AppState {
    /// The state for a runtime, its directory and the catalogue of what was deployed.
    pub fn new(runtime: Runtime, org: AnyOrgStore, catalogue: Catalogue, options: Options) -> AppState {
        AppState {
            inner: Arc::new(Shared {
                auth_cache: Mutex::new(HashMap::new()),
                runtime,
                org,
                catalogue: RwLock::new(Arc::new(catalogue)),
                metrics: Metrics::new(),
                options,
            }),
        }
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    /// The directory.
    pub fn org(&self) -> &AnyOrgStore {
        &self.inner.org
    }

    /// The catalogue, as it is now.
    pub fn catalogue(&self) -> Arc<Catalogue> {
        Arc::clone(&self.inner.catalogue.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Adds what an installed pack brings that the catalogue lacks: its roles, and its
    /// processes as the standard defines them (a dealer's effective version is that dealer's
    /// alone; it is deployed, not catalogued).
    pub fn learn(&self, pack: &packs::Pack) {
        let mut current = self.inner.catalogue.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut next = Catalogue::clone(&current);
        next.add_roles(pack.manifest.roles.iter());
        for p in &pack.processes {
            if next.process(&p.id).is_none() {
                next.add_process(Arc::clone(p));
            }
        }
        *current = Arc::new(next);
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The settings.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// Now, by the runtime's clock.
    pub fn now(&self) -> Timestamp {
        self.inner.runtime.clock().now()
    }

    /// Now, in milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.now().as_millisecond()
    }

    /// Forgets every cached authentication (after a change to users or tokens).
    pub fn forget_authentications(&self) {
        self.inner.auth_cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }

    /// The principal a bearer token stands for, if it is valid.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, Error> {
        let hash = token_hash(token);
        {
            let cache = self.inner.auth_cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((p, at)) = cache.get(&hash)
                && at.elapsed() < AUTH_TTL
            {
                return Ok(Some(p.clone()));
            }
        }
        let Some(found) = self.inner.org.authenticate(&hash, self.now_ms()).await? else {
            return Ok(None);
        };
        let (user, org) = (found.user, found.organisation);
        let is_dealer = org.kind != "hq";
        let manager = is_dealer && user.roles.iter().any(|r| self.inner.options.manager_roles.contains(r));
        let principal = Principal {
            user: user.id,
            name: user.name,
            organisation: org.id,
            kind: if is_dealer { OrgKind::Dealer } else { OrgKind::Hq },
            roles: user.roles,
            admin: user.admin,
            manager,
            lang: if user.lang.as_deref() == Some("zh") { Lang::Zh } else { Lang::En },
            time_zone: org.time_zone,
        };
        let mut cache = self.inner.auth_cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= AUTH_CACHE_MAX {
            cache.clear();
        }
        cache.insert(hash, (principal.clone(), Instant::now()));
        Ok(Some(principal))
    }
}
