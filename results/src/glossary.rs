//! The model names a reader meets in reports and on the command line, in plain words.

/// Every model name faultline checks, with what it means, strongest first.
pub const MODELS: &[(&str, &str)] = &[
    (
        "linearizable",
        "every operation takes effect at one instant between its call and its answer, in one order all clients agree on (Herlihy & Wing)",
    ),
    (
        "sequential",
        "sequential consistency: one order all clients agree on that keeps each client's own order, but not real time",
    ),
    (
        "ccv",
        "causal convergence: causal consistency, and every replica orders conflicting writes the same way",
    ),
    (
        "cm",
        "causal memory: each client sees writes in an order that respects causality, possibly a different order per client",
    ),
    (
        "cc",
        "causal consistency: a write is never seen before the writes it causally depends on",
    ),
    (
        "pram",
        "pipelined RAM: every client sees each other client's writes in the order that client made them (ryw + mr + mw)",
    ),
    (
        "ryw",
        "read your writes: a client reads its own last write or something newer",
    ),
    (
        "mr",
        "monotonic reads: a client never reads older data than it already read",
    ),
    (
        "mw",
        "monotonic writes: a client's writes are seen in the order it made them",
    ),
    (
        "wfr",
        "writes follow reads: a write made after reading a value is ordered after the write that produced it",
    ),
];

/// What each result word in a report means.
pub const RESULTS: &[(&str, &str)] = &[
    ("valid", "checked, and it held"),
    ("invalid", "checked, and it did not hold: the witness shows how"),
    ("implied", "not checked itself: a stronger model held, so this one did too"),
    ("ruled out", "not checked itself: a weaker model did not hold, so neither did this one"),
    ("unknown", "checked, but the checker could not decide (out of time or memory, or a case it cannot decide)"),
    ("not checked", "nobody asked: nothing is known about it, which is not the same as failing"),
];

/// The meaning of `model`, if it is one of [`MODELS`].
pub fn meaning(model: &str) -> Option<&'static str> {
    MODELS.iter().find(|(m, _)| *m == model).map(|(_, d)| *d)
}

/// The glossary as text for `--help`.
pub fn help_text() -> String {
    let mut s = String::from("Consistency models (strongest first):\n");
    for (m, d) in MODELS {
        s.push_str(&format!("  {m:<13} {d}\n"));
    }
    s.push_str("\nResults:\n");
    for (r, d) in RESULTS {
        s.push_str(&format!("  {r:<13} {d}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_checked_model_has_a_meaning() {
        for m in faultline_checkers::lattice::ModelName::ALL {
            assert!(meaning(m.as_str()).is_some(), "{m}");
        }
        assert!(meaning("snapshot").is_none());
        let help = help_text();
        assert!(
            help.contains("  ryw ") && help.contains("not checked"),
            "{help}"
        );
    }
}
