//! faultline-checkers: sequential models, consistency checkers, verdicts and witnesses.
//!
//! Everything here is pure: histories in, verdicts out. No I/O.

#![warn(missing_docs)]

pub mod verdict;

pub use verdict::{Minimality, Step, Verdict, Witness, WitnessOp};
