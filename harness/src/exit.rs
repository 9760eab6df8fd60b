//! Exit codes (Jepsen's, DESIGN §5), and how the outcomes of several files or campaigns
//! fold into one.

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

/// Folds verdicts, bad inputs and failures into one exit code, by precedence:
/// 1 (a violation) > 255 (harness failure) > 254 (bad input) > 2 (unknown) > 0.
///
/// A violation found in one file (or campaign) is never hidden by another one that could
/// not be read or run: it is the one finding that stands whatever else happened. A
/// harness failure comes before bad input because it means faultline itself could not
/// do what it was asked, while bad input means the user can fix the input.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    invalid: bool,
    unknown: bool,
    bad_input: bool,
    harness_failure: bool,
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

    /// Records an input that could not be read or understood (exit 254).
    pub fn add_bad_input(&mut self) {
        self.bad_input = true;
    }

    /// Records a failure of the harness itself (exit 255).
    pub fn add_harness_failure(&mut self) {
        self.harness_failure = true;
    }

    /// Records an exit code already decided (a campaign's, say).
    pub fn add_code(&mut self, code: u8) {
        match code {
            VALID => {}
            INVALID => self.invalid = true,
            UNKNOWN => self.unknown = true,
            BAD_INPUT => self.bad_input = true,
            _ => self.harness_failure = true,
        }
    }

    /// The exit code.
    pub fn code(&self) -> u8 {
        if self.invalid {
            INVALID
        } else if self.harness_failure {
            HARNESS_FAILURE
        } else if self.bad_input {
            BAD_INPUT
        } else if self.unknown {
            UNKNOWN
        } else {
            VALID
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(codes: &[u8]) -> u8 {
        let mut o = Outcome::default();
        for c in codes {
            o.add_code(*c);
        }
        o.code()
    }

    #[test]
    fn a_violation_beats_failures_which_beat_bad_input_which_beats_unknown() {
        assert_eq!(code_of(&[]), VALID);
        assert_eq!(code_of(&[VALID, UNKNOWN]), UNKNOWN);
        assert_eq!(code_of(&[UNKNOWN, BAD_INPUT, VALID]), BAD_INPUT);
        assert_eq!(code_of(&[BAD_INPUT, HARNESS_FAILURE]), HARNESS_FAILURE);
        assert_eq!(code_of(&[HARNESS_FAILURE, BAD_INPUT, INVALID]), INVALID);
        assert_eq!(code_of(&[INVALID, UNKNOWN]), INVALID);
        let mut o = Outcome::default();
        o.add_bad_input();
        o.add(&Verdict::Invalid {
            witness: Box::new(faultline_checkers::Witness {
                model: "linearizable".into(),
                kind: "stale-read".into(),
                key: None,
                summary: String::new(),
                ops: Vec::new(),
                steps: Vec::new(),
                minimality: faultline_checkers::Minimality::NotMinimised,
            }),
        });
        o.add_harness_failure();
        assert_eq!(o.code(), INVALID);
    }
}
