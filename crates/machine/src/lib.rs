//! The pure execution core of sopflow.
//!
//! [`start`] and [`step`] take a validated [`model::Process`], an instance, an input and the
//! current time, and return either a [`Transition`] (the new instance, the effects the runtime
//! must apply, the events that explain what happened) or a [`Rejection`] value (nothing
//! changed).
//!
//! Architecture invariant: this crate never does I/O, never reads a clock, never makes a random
//! id and never spawns anything. Time comes in as an argument, ids are derived from the
//! instance, and effects go out as data. The same inputs always give the same transition.

mod env;
mod exec;
pub mod instance;
mod io;
pub mod trace;

pub use exec::{schema_errors, start, step};
pub use instance::*;
pub use io::*;
