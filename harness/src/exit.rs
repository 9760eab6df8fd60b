//! Exit codes (Jepsen's, DESIGN §5).

use faultline_checkers::Verdict;

/// Every claimed model valid.
pub const VALID: u8 = 0;
/// A violation was found.
pub const INVALID: u8 = 1;
/// Some model could not be decided, and none was violated.
pub const UNKNOWN: u8 = 2;
/// Bad arguments, plan or unreadable input.
pub const BAD_INPUT: u8 = 254;
/// The harness itself failed.
pub const HARNESS_FAILURE: u8 = 255;

/// Folds verdicts into an exit code: invalid beats unknown beats valid.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    invalid: bool,
    unknown: bool,
    bad_input: bool,
}

impl Outcome {
    /// Records one verdict.
    pub fn add(&mut self, v: &Verdict) {
        match v {
            Verdict::Valid => {}
            Verdict::Invalid { .. } => self.invalid = true,
            Verdict::Unknown { .. } => self.unknown = true,
        }
    }

    /// Records an input that could not be read or understood.
    pub fn add_bad_input(&mut self) {
        self.bad_input = true;
    }

    /// The exit code.
    pub fn code(&self) -> u8 {
        if self.bad_input {
            BAD_INPUT
        } else if self.invalid {
            INVALID
        } else if self.unknown {
            UNKNOWN
        } else {
            VALID
        }
    }
}
