//! The directory the HTTP server authenticates and authorises against: organisations (brand
//! headquarters and dealers), their users with the roles they hold, API tokens (only their
//! SHA-256 is kept), and idempotency records of requests that must act once.
//!
//! [`OrgStore`] is the port; [`MemoryOrgStore`] the in-memory implementation (the SQL ones
//! are in `store-sqlx`). Like the rest of the store, it never reads a clock: `now` is passed in.
//!
//! Deliberately absent: password hashing, token generation and any rule about who may do what.
//! Those belong to the server; the store keeps rows.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::{Millis, Result};

/// An organisation: the brand's headquarters (`hq`) or a dealer (`dealer`, a tenant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganisationRow {
    /// The id (for a dealer: the `dealer` of its instances and tasks).
    pub id: String,
    /// `dealer` or `hq`.
    pub kind: String,
    /// The display name.
    pub name: String,
    /// The IANA time zone its days are counted in (e.g. `Asia/Shanghai`).
    pub time_zone: String,
    /// When it was created.
    pub created_at: Millis,
}

/// A user of an organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    /// The id: unique across organisations; what tasks and the audit trail name.
    pub id: String,
    /// The organisation.
    pub organisation: String,
    /// The display name.
    pub name: String,
    /// The roles held in the organisation (ids of the role catalogue).
    pub roles: Vec<String>,
    /// Manages the organisation's users, tokens and incidents.
    pub admin: bool,
    /// A PHC string (`$argon2id$...`), if the user may log in with a password.
    pub password_hash: Option<String>,
    /// The preferred language (`zh` or `en`).
    pub lang: Option<String>,
    /// A deactivated user's tokens stop working.
    pub active: bool,
    /// When it was created.
    pub created_at: Millis,
}

/// An API token. The token itself is shown once; only its SHA-256 is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRow {
    /// A short public id, for listing and revoking.
    pub id: String,
    /// SHA-256 of the token (hex).
    pub hash: String,
    /// The user it authenticates.
    pub user_id: String,
    /// What it is for (`cli`, `login`, `demo`, ...).
    pub label: String,
    /// When it was created.
    pub created_at: Millis,
    /// When it stops working, if ever.
    pub expires_at: Option<Millis>,
    /// When it was revoked.
    pub revoked_at: Option<Millis>,
}

/// A request made with an `Idempotency-Key`: its fingerprint and, once answered, the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRow {
    /// Whose key it is (a user id): keys of different users never collide.
    pub scope: String,
    /// The key.
    pub key: String,
    /// SHA-256 of the request (method, path, body).
    pub request_hash: String,
    /// The answer's HTTP status (0 while the first request is still running).
    pub status: i64,
    /// The answer's body (JSON text), once answered.
    pub response: Option<String>,
    /// When the key was first used.
    pub created_at: Millis,
}

/// A valid token with its user and the user's organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The token.
    pub token: TokenRow,
    /// Its user.
    pub user: UserRow,
    /// The user's organisation.
    pub organisation: OrganisationRow,
}

/// What [`OrgStore::idempotency_begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    /// The key is new and now reserved for this request: run it, then `finish` or `abort`.
    Fresh,
    /// The same request was answered before: this is its record.
    Replay(IdempotencyRow),
    /// The key was used for a different request.
    Mismatch,
    /// The same request is running right now.
    InProgress,
}

/// The directory port.
pub trait OrgStore: Clone + Send + Sync + 'static {
    /// Creates an organisation unless one with its id exists; `true` if it was new.
    fn put_organisation(&self, org: &OrganisationRow) -> impl Future<Output = Result<bool>> + Send;

    /// An organisation by id.
    fn organisation(&self, id: &str) -> impl Future<Output = Result<Option<OrganisationRow>>> + Send;

    /// Every organisation, by id.
    fn organisations(&self) -> impl Future<Output = Result<Vec<OrganisationRow>>> + Send;

    /// Creates or replaces a user (by id).
    fn put_user(&self, user: &UserRow) -> impl Future<Output = Result<()>> + Send;

    /// A user by id.
    fn user(&self, id: &str) -> impl Future<Output = Result<Option<UserRow>>> + Send;

    /// The users of an organisation (`None`: of all), by id.
    fn users(&self, organisation: Option<&str>) -> impl Future<Output = Result<Vec<UserRow>>> + Send;

    /// Stores a new token.
    fn put_token(&self, token: &TokenRow) -> impl Future<Output = Result<()>> + Send;

    /// The token with this hash, its user and their organisation, if the token is neither
    /// revoked nor expired at `now` and the user is active. One read: it runs on every request.
    fn authenticate(&self, hash: &str, now: Millis) -> impl Future<Output = Result<Option<Authenticated>>> + Send;

    /// A token by its public id.
    fn token(&self, id: &str) -> impl Future<Output = Result<Option<TokenRow>>> + Send;

    /// A user's tokens (revoked ones included), newest first.
    fn tokens(&self, user_id: &str) -> impl Future<Output = Result<Vec<TokenRow>>> + Send;

    /// Revokes a token by its public id; `true` if it was valid until now.
    fn revoke_token(&self, id: &str, at: Millis) -> impl Future<Output = Result<bool>> + Send;

    /// Reserves an idempotency key for a request, or says what happened to it before.
    fn idempotency_begin(&self, row: &IdempotencyRow) -> impl Future<Output = Result<Begun>> + Send;

    /// Records the answer to a reserved key.
    fn idempotency_finish(
        &self,
        scope: &str,
        key: &str,
        status: i64,
        response: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Releases a reserved key without an answer (the request changed nothing; a retry may
    /// run it again).
    fn idempotency_abort(&self, scope: &str, key: &str) -> impl Future<Output = Result<()>> + Send;

    /// Forgets keys first used before `before`.
    fn idempotency_purge(&self, before: Millis) -> impl Future<Output = Result<u64>> + Send;
}

/// The directory in memory, for tests and `memory:` databases. Clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryOrgStore {
    state: Arc<Mutex<OrgState>>,
}

#[derive(Debug, Default)]
struct OrgState {
    organisations: BTreeMap<String, OrganisationRow>,
    users: BTreeMap<String, UserRow>,
    tokens: BTreeMap<String, TokenRow>,
    idempotency: BTreeMap<(String, String), IdempotencyRow>,
}

impl MemoryOrgStore {
    /// An empty directory.
    pub fn new() -> MemoryOrgStore {
        MemoryOrgStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, OrgState> {
        // No invariant spans a panic here (every method is one insert or read).
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl OrgStore for MemoryOrgStore {
    async fn put_organisation(&self, org: &OrganisationRow) -> Result<bool> {
        let mut s = self.lock();
        if s.organisations.contains_key(&org.id) {
            return Ok(false);
        }
        s.organisations.insert(org.id.clone(), org.clone());
        Ok(true)
    }

    async fn organisation(&self, id: &str) -> Result<Option<OrganisationRow>> {
        Ok(self.lock().organisations.get(id).cloned())
    }

    async fn organisations(&self) -> Result<Vec<OrganisationRow>> {
        Ok(self.lock().organisations.values().cloned().collect())
    }

    async fn put_user(&self, user: &UserRow) -> Result<()> {
        self.lock().users.insert(user.id.clone(), user.clone());
        Ok(())
    }

    async fn user(&self, id: &str) -> Result<Option<UserRow>> {
        Ok(self.lock().users.get(id).cloned())
    }

    async fn users(&self, organisation: Option<&str>) -> Result<Vec<UserRow>> {
        let s = self.lock();
        Ok(s.users.values().filter(|u| organisation.is_none_or(|o| u.organisation == o)).cloned().collect())
    }

    async fn put_token(&self, token: &TokenRow) -> Result<()> {
        self.lock().tokens.insert(token.id.clone(), token.clone());
        Ok(())
    }

    async fn authenticate(&self, hash: &str, now: Millis) -> Result<Option<Authenticated>> {
        let s = self.lock();
        let Some(token) = s.tokens.values().find(|t| t.hash == hash) else { return Ok(None) };
        if !token_valid(token, now) {
            return Ok(None);
        }
        let Some(user) = s.users.get(&token.user_id).filter(|u| u.active) else { return Ok(None) };
        let Some(organisation) = s.organisations.get(&user.organisation) else { return Ok(None) };
        Ok(Some(Authenticated { token: token.clone(), user: user.clone(), organisation: organisation.clone() }))
    }

    async fn token(&self, id: &str) -> Result<Option<TokenRow>> {
        Ok(self.lock().tokens.get(id).cloned())
    }

    async fn tokens(&self, user_id: &str) -> Result<Vec<TokenRow>> {
        let s = self.lock();
        let mut out: Vec<TokenRow> = s.tokens.values().filter(|t| t.user_id == user_id).cloned().collect();
        out.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        Ok(out)
    }

    async fn revoke_token(&self, id: &str, at: Millis) -> Result<bool> {
        let mut s = self.lock();
        match s.tokens.get_mut(id) {
            Some(t) if t.revoked_at.is_none() => {
                t.revoked_at = Some(at);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn idempotency_begin(&self, row: &IdempotencyRow) -> Result<Begun> {
        let mut s = self.lock();
        let k = (row.scope.clone(), row.key.clone());
        match s.idempotency.get(&k) {
            None => {
                s.idempotency.insert(k, IdempotencyRow { status: 0, response: None, ..row.clone() });
                Ok(Begun::Fresh)
            }
            Some(found) => Ok(judge(found, &row.request_hash)),
        }
    }

    async fn idempotency_finish(&self, scope: &str, key: &str, status: i64, response: &str) -> Result<()> {
        if let Some(r) = self.lock().idempotency.get_mut(&(scope.to_string(), key.to_string())) {
            r.status = status;
            r.response = Some(response.to_string());
        }
        Ok(())
    }

    async fn idempotency_abort(&self, scope: &str, key: &str) -> Result<()> {
        self.lock().idempotency.remove(&(scope.to_string(), key.to_string()));
        Ok(())
    }

    async fn idempotency_purge(&self, before: Millis) -> Result<u64> {
        let mut s = self.lock();
        let n = s.idempotency.len();
        s.idempotency.retain(|_, r| r.created_at >= before);
        Ok((n - s.idempotency.len()) as u64)
    }
}

/// Whether a token works at `now`.
pub fn token_valid(token: &TokenRow, now: Millis) -> bool {
    token.revoked_at.is_none() && token.expires_at.is_none_or(|e| e > now)
}

/// What an existing idempotency record means for a request with `request_hash`. Shared by
/// every backend so they answer alike.
pub fn judge(found: &IdempotencyRow, request_hash: &str) -> Begun {
    if found.request_hash != request_hash {
        Begun::Mismatch
    } else if found.status == 0 {
        Begun::InProgress
    } else {
        Begun::Replay(found.clone())
    }
}
