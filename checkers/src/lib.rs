//! faultline-checkers: sequential models, consistency checkers, verdicts and witnesses.
//!
//! Everything here is pure: histories in, verdicts out. No I/O.

#![warn(missing_docs)]

mod causal;
pub mod incremental;
pub mod lattice;
pub mod lin;
pub mod model;
pub(crate) mod prepare;
mod sequential;
mod session;
pub mod shrink;
pub mod synth;
pub mod txn;
pub mod verdict;

pub use incremental::{EarlyViolation, Incremental, IncrementalSpec};
pub use lattice::{
    check_all, check_model, check_models, model_table, ConsistencyOptions, ModelName, ModelRow,
    ModelTable, RowStatus,
};
pub use lin::{check_linearizable, Algorithm, LinOptions, LinReport};
pub use model::DataModel;
pub use txn::{check_txn, txn_model_table, Anomaly, TxnModel, TxnModelTable, TxnOptions};
pub use verdict::{Minimality, Step, Verdict, Witness, WitnessOp};
