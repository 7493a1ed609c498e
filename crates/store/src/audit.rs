//! The tamper-evident audit chain: canonical JSON, entry hashing and chain verification.
//!
//! Each entry's hash is `sha256(prev_hash || canonical content)`, where the content is every
//! stored column except `seq` and the hashes, as JSON with object keys sorted at every level.
//! The first entry of a chain has [`GENESIS`] as its previous hash. Changing any stored field
//! of any entry, removing an entry or reordering entries breaks the chain from that entry on,
//! and [`verify_chain`] names the first entry that does not fit.
//!
//! The content is hashed from the stored values, so the check needs nothing but the rows: an
//! external archive of the JSON-lines export can be verified with the same function.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::{AuditRow, Millis};

/// The previous hash of a chain's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An entry before it is chained: everything but the position and the hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// The chain.
    pub chain: String,
    /// Who, as JSON.
    pub actor: Value,
    /// What happened.
    pub kind: String,
    /// The step concerned.
    pub step: Option<String>,
    /// The details.
    pub entry: Value,
    /// The definition the change ran on.
    pub definition_hash: Option<String>,
}

/// Chains a draft after the entry `(prev_seq, prev_hash)` of its chain.
pub fn seal(draft: Draft, at: Millis, prev_seq: i64, prev_hash: &str) -> AuditRow {
    let mut row = AuditRow {
        seq: 0,
        chain: draft.chain,
        chain_seq: prev_seq + 1,
        at,
        actor: canonical(&draft.actor),
        kind: draft.kind,
        step: draft.step,
        entry: canonical(&draft.entry),
        definition_hash: draft.definition_hash,
        prev_hash: prev_hash.to_string(),
        hash: String::new(),
    };
    row.hash = hash_of(&row);
    row
}

/// The hash an entry must carry, from its stored fields and its `prev_hash`.
pub fn hash_of(row: &AuditRow) -> String {
    let mut hasher = Sha256::new();
    hasher.update(row.prev_hash.as_bytes());
    hasher.update(content(row).as_bytes());
    hex::encode(hasher.finalize())
}

/// The hashed content of an entry: its stored fields as canonical JSON. Fields stored as JSON
/// text are parsed first, so a backend that re-formats JSON does not break the chain; one
/// that cannot be parsed is hashed as text, so the chain breaks at that entry.
fn content(row: &AuditRow) -> String {
    let json_or_text = |s: &str| serde_json::from_str::<Value>(s).unwrap_or_else(|_| Value::String(s.to_string()));
    let mut m = Map::new();
    m.insert("chain".into(), Value::String(row.chain.clone()));
    m.insert("chain_seq".into(), Value::from(row.chain_seq));
    m.insert("at".into(), Value::from(row.at));
    m.insert("actor".into(), json_or_text(&row.actor));
    m.insert("kind".into(), Value::String(row.kind.clone()));
    m.insert("step".into(), row.step.clone().map_or(Value::Null, Value::String));
    m.insert("entry".into(), json_or_text(&row.entry));
    m.insert("definition_hash".into(), row.definition_hash.clone().map_or(Value::Null, Value::String));
    canonical(&Value::Object(m))
}

/// JSON text with object keys sorted at every level and no insignificant whitespace.
pub fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(v) = m.get(k) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Where a chain stops verifying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chain `{chain}` breaks at entry {chain_seq} (seq {seq}): {problem}")]
pub struct Broken {
    /// The chain.
    pub chain: String,
    /// The first entry that does not fit.
    pub chain_seq: i64,
    /// Its global sequence number.
    pub seq: i64,
    /// What does not fit: expected vs found.
    pub problem: String,
}

/// Checks one chain's entries (in `chain_seq` order): positions count from 1 without gaps,
/// each entry links to its predecessor's hash, and each hash matches the entry's content.
pub fn verify_chain(rows: &[AuditRow]) -> Result<(), Broken> {
    let mut v = Verifier::new();
    for row in rows {
        v.push(row);
        if let Some(b) = v.broken.pop() {
            return Err(b);
        }
    }
    Ok(())
}

/// Verifies chains from a stream of rows ordered by chain, then position (as
/// [`crate::Store::audit_scan`] gives them), one row at a time, so a large trail needs no
/// memory beyond one entry.
#[derive(Debug, Default)]
pub struct Verifier {
    chain: Option<String>,
    expected_seq: i64,
    prev_hash: String,
    /// Whether the current chain already broke (later entries of it are not reported).
    failed: bool,
    /// Chains seen.
    pub n_chains: u64,
    /// Entries seen.
    pub n_entries: u64,
    /// The first broken entry of every broken chain.
    pub broken: Vec<Broken>,
}

impl Verifier {
    /// A verifier that has seen nothing.
    pub fn new() -> Verifier {
        Verifier::default()
    }

    /// Checks the next row.
    pub fn push(&mut self, row: &AuditRow) {
        self.n_entries += 1;
        if self.chain.as_deref() != Some(row.chain.as_str()) {
            self.chain = Some(row.chain.clone());
            self.expected_seq = 1;
            self.prev_hash = GENESIS.to_string();
            self.failed = false;
            self.n_chains += 1;
        }
        if self.failed {
            return;
        }
        let problem = if row.chain_seq != self.expected_seq {
            Some(format!("expected position {}, found {}", self.expected_seq, row.chain_seq))
        } else if row.prev_hash != self.prev_hash {
            Some(format!("expected previous hash {}, found {}", self.prev_hash, row.prev_hash))
        } else {
            let expected = hash_of(row);
            (row.hash != expected).then(|| format!("expected hash {expected}, found {}", row.hash))
        };
        match problem {
            Some(problem) => {
                self.failed = true;
                self.broken.push(Broken { chain: row.chain.clone(), chain_seq: row.chain_seq, seq: row.seq, problem });
            }
            None => {
                self.expected_seq += 1;
                self.prev_hash = row.hash.clone();
            }
        }
    }
}
