//! The reference `inventory` plugin: a parts stock table the engine keeps, importable from CSV,
//! behind the actions `inventory.check` and `inventory.reserve` that the standard pack's stock
//! checks use by default.
//!
//! Storage is the small [`InventoryStore`] port, with [`MemoryInventory`] here; a SQL table is
//! an adapter written against the same trait. Reservations are idempotent on the invocation's
//! idempotency key: the outbox may deliver the same try twice after a crash, and the second
//! delivery must not take the parts a second time. Not enough stock is an answer
//! (`reserved: false`), not a failure.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use plugin_api::{Action, ActionInfo, BoxFuture, Capability, Invocation};
use serde::Deserialize;
use serde_json::{Value, json};

/// One part in stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The part number.
    pub part_no: String,
    /// What it is.
    pub description: String,
    /// How many are on hand.
    pub on_hand: u64,
    /// Where it is kept.
    pub location: String,
}

/// A request to take parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The idempotency key of the try that asks.
    pub key: String,
    /// The part.
    pub part_no: String,
    /// How many.
    pub quantity: u64,
    /// What they are for (a repair order, a service order).
    pub reference: String,
}

/// The answer to a reservation (the first answer, when the key was seen before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reserved {
    /// Whether the parts were taken.
    pub reserved: bool,
    /// How many are on hand afterwards.
    pub on_hand: u64,
}

/// Why the stock table could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A CSV file has problems; every one, with its line.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Csv(Vec<CsvProblem>),
    /// The storage behind the table failed.
    #[error("the stock table is not available: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// One problem in a CSV file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct CsvProblem {
    /// The line, from 1 (the header is line 1).
    pub line: u64,
    /// What is wrong.
    pub message: String,
}

/// The stock table: one stock per dealer (a dealer's process never sees another's parts).
/// Implementations must make `reserve` atomic (check and take in one step) and remember each
/// key's answer.
pub trait InventoryStore: Send + Sync {
    /// A part of the dealer's stock, if the table has it.
    fn part<'a>(&'a self, dealer: &'a str, part_no: &'a str) -> BoxFuture<'a, Result<Option<Part>, Error>>;
    /// Takes parts from the dealer's stock if enough are on hand; the same key gives the same
    /// answer again.
    fn reserve<'a>(&'a self, dealer: &'a str, reservation: Reservation) -> BoxFuture<'a, Result<Reserved, Error>>;
    /// Adds or replaces parts of the dealer's stock (an import).
    fn upsert<'a>(&'a self, dealer: &'a str, parts: Vec<Part>) -> BoxFuture<'a, Result<(), Error>>;
}

/// The stock table in memory.
#[derive(Debug, Default)]
pub struct MemoryInventory {
    state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    /// (dealer, part number) -> part.
    parts: BTreeMap<(String, String), Part>,
    answers: BTreeMap<String, Reserved>,
}

impl MemoryInventory {
    /// An empty table.
    pub fn new() -> MemoryInventory {
        MemoryInventory::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        // A panic while holding the lock leaves consistent data: every change is one insert.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl InventoryStore for MemoryInventory {
    fn part<'a>(&'a self, dealer: &'a str, part_no: &'a str) -> BoxFuture<'a, Result<Option<Part>, Error>> {
        let part = self.lock().parts.get(&(dealer.to_owned(), part_no.to_owned())).cloned();
        Box::pin(std::future::ready(Ok(part)))
    }

    fn reserve<'a>(&'a self, dealer: &'a str, reservation: Reservation) -> BoxFuture<'a, Result<Reserved, Error>> {
        let mut state = self.lock();
        if let Some(answer) = state.answers.get(&reservation.key) {
            return Box::pin(std::future::ready(Ok(*answer)));
        }
        let answer = match state.parts.get_mut(&(dealer.to_owned(), reservation.part_no.clone())) {
            Some(part) if part.on_hand >= reservation.quantity => {
                part.on_hand -= reservation.quantity;
                Reserved { reserved: true, on_hand: part.on_hand }
            }
            Some(part) => Reserved { reserved: false, on_hand: part.on_hand },
            None => Reserved { reserved: false, on_hand: 0 },
        };
        state.answers.insert(reservation.key, answer);
        Box::pin(std::future::ready(Ok(answer)))
    }

    fn upsert<'a>(&'a self, dealer: &'a str, parts: Vec<Part>) -> BoxFuture<'a, Result<(), Error>> {
        let mut state = self.lock();
        for part in parts {
            state.parts.insert((dealer.to_owned(), part.part_no.clone()), part);
        }
        Box::pin(std::future::ready(Ok(())))
    }
}

/// The columns a stock CSV must have, in this order.
pub const CSV_HEADER: [&str; 4] = ["part_no", "description", "on_hand", "location"];

/// Reads a stock CSV (`part_no,description,on_hand,location`); every problem is reported with
/// its line, and nothing is returned unless the whole file is right.
pub fn parse_csv(text: &str) -> Result<Vec<Part>, Error> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(text.as_bytes());
    let mut problems = Vec::new();
    match reader.headers() {
        Ok(header) => {
            let found: Vec<&str> = header.iter().map(str::trim).collect();
            if found != CSV_HEADER {
                problems.push(CsvProblem {
                    line: 1,
                    message: format!("the header is `{}`; it must be `{}`", found.join(","), CSV_HEADER.join(",")),
                });
                return Err(Error::Csv(problems));
            }
        }
        Err(e) => {
            problems.push(CsvProblem { line: 1, message: format!("the header cannot be read: {e}") });
            return Err(Error::Csv(problems));
        }
    }
    let mut parts: Vec<Part> = Vec::new();
    let mut first_line: BTreeMap<String, u64> = BTreeMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                problems.push(CsvProblem { line, message: format!("the line cannot be read: {e}") });
                continue;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        if record.len() != CSV_HEADER.len() {
            problems.push(CsvProblem {
                line,
                message: format!("the line has {} field(s); it must have {}", record.len(), CSV_HEADER.len()),
            });
            continue;
        }
        let field = |idx: usize| record.get(idx).unwrap_or_default().trim().to_owned();
        let part_no = field(0);
        if part_no.is_empty() {
            problems.push(CsvProblem { line, message: "the part number is empty".into() });
            continue;
        }
        let on_hand = match field(2).parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                problems.push(CsvProblem {
                    line,
                    message: format!("on_hand is `{}`; it must be a whole number of 0 or more", field(2)),
                });
                continue;
            }
        };
        if let Some(first) = first_line.get(&part_no) {
            problems.push(CsvProblem { line, message: format!("the part `{part_no}` is already on line {first}") });
            continue;
        }
        first_line.insert(part_no.clone(), line);
        parts.push(Part { part_no, description: field(1), on_hand, location: field(3) });
    }
    if problems.is_empty() { Ok(parts) } else { Err(Error::Csv(problems)) }
}

/// Reads a stock CSV into a store.
pub async fn import_csv(store: &dyn InventoryStore, dealer: &str, text: &str) -> Result<usize, Error> {
    let parts = parse_csv(text)?;
    let n_parts = parts.len();
    store.upsert(dealer, parts).await?;
    Ok(n_parts)
}

#[derive(Debug, Deserialize)]
struct CheckInput {
    part_no: String,
    quantity: u64,
}

#[derive(Debug, Deserialize)]
struct ReserveInput {
    part_no: String,
    quantity: u64,
    reference: String,
}

/// `inventory.check`: whether `quantity` of a part is on hand.
pub struct CheckAction {
    info: ActionInfo,
    store: Arc<dyn InventoryStore>,
}

/// `inventory.reserve`: takes `quantity` of a part for a reference, once per idempotency key.
pub struct ReserveAction {
    info: ActionInfo,
    store: Arc<dyn InventoryStore>,
}

fn info(name: &str, description: &str, input: Value, output: Value) -> ActionInfo {
    ActionInfo {
        name: name.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        description: description.into(),
        input_schema: input,
        output_schema: output,
        capabilities: vec![Capability::Table { name: "inventory".into() }],
    }
}

impl CheckAction {
    /// The action over `store`.
    pub fn new(store: Arc<dyn InventoryStore>) -> CheckAction {
        let input = json!({
            "type": "object", "additionalProperties": false, "required": ["part_no", "quantity"],
            "properties": {
                "part_no": { "type": "string", "minLength": 1 },
                "quantity": { "type": "integer", "minimum": 1 }
            }
        });
        let output = json!({
            "type": "object", "additionalProperties": false, "required": ["available", "on_hand"],
            "properties": { "available": { "type": "boolean" }, "on_hand": { "type": "integer", "minimum": 0 } }
        });
        CheckAction {
            info: info("inventory.check", "Tells whether a part is in stock in the quantity needed.", input, output),
            store,
        }
    }
}

impl ReserveAction {
    /// The action over `store`.
    pub fn new(store: Arc<dyn InventoryStore>) -> ReserveAction {
        let input = json!({
            "type": "object", "additionalProperties": false, "required": ["part_no", "quantity", "reference"],
            "properties": {
                "part_no": { "type": "string", "minLength": 1 },
                "quantity": { "type": "integer", "minimum": 1 },
                "reference": { "type": "string", "minLength": 1 }
            }
        });
        let output = json!({
            "type": "object", "additionalProperties": false, "required": ["reserved", "on_hand"],
            "properties": { "reserved": { "type": "boolean" }, "on_hand": { "type": "integer", "minimum": 0 } }
        });
        ReserveAction {
            info: info("inventory.reserve", "Takes parts from stock for a repair, once per try.", input, output),
            store,
        }
    }
}

fn backend(e: &Error) -> plugin_api::Error {
    plugin_api::Error::Retryable(e.to_string())
}

impl Action for CheckAction {
    fn info(&self) -> &ActionInfo {
        &self.info
    }

    fn invoke(&self, invocation: Invocation) -> BoxFuture<'_, Result<Value, plugin_api::Error>> {
        Box::pin(async move {
            let input: CheckInput = serde_json::from_value(invocation.input)
                .map_err(|e| plugin_api::Error::Permanent(format!("the input is not a stock check: {e}")))?;
            let on_hand = self
                .store
                .part(&invocation.dealer, &input.part_no)
                .await
                .map_err(|e| backend(&e))?
                .map_or(0, |p| p.on_hand);
            Ok(json!({ "available": on_hand >= input.quantity, "on_hand": on_hand }))
        })
    }
}

impl Action for ReserveAction {
    fn info(&self) -> &ActionInfo {
        &self.info
    }

    fn invoke(&self, invocation: Invocation) -> BoxFuture<'_, Result<Value, plugin_api::Error>> {
        Box::pin(async move {
            let input: ReserveInput = serde_json::from_value(invocation.input)
                .map_err(|e| plugin_api::Error::Permanent(format!("the input is not a reservation: {e}")))?;
            let answer = self
                .store
                .reserve(
                    &invocation.dealer,
                    Reservation {
                        key: invocation.idempotency_key,
                        part_no: input.part_no,
                        quantity: input.quantity,
                        reference: input.reference,
                    },
                )
                .await
                .map_err(|e| backend(&e))?;
            Ok(json!({ "reserved": answer.reserved, "on_hand": answer.on_hand }))
        })
    }
}
