//! `faultline check --model all` on tiny histories decoded from the input bytes, against
//! the brute-force reference of `checkers/tests/brute/`: every decided model must agree
//! with the reference, and an unknown verdict is only allowed where the checkers document
//! it. A disagreement panics (a crash for the fuzzer) with the history and the model.
#![no_main]

#[allow(dead_code)]
#[path = "../../checkers/tests/brute/mod.rs"]
mod brute;

use faultline_history::pair;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (events, sem) = brute::bytes::history(data);
    let paired = match pair(&events, "fuzz") {
        Ok(p) => p,
        Err(e) => panic!("the decoder made a history that does not pair: {e}"),
    };
    // The reference enumerates every reads-from choice: a history whose choices run into
    // the millions (many writes of one value) would time the fuzzer out on the reference,
    // not on the checkers.
    if paired.ops.is_empty() || brute::cost(&paired, &sem) > 1e6 {
        return;
    }
    if let Err(e) = brute::compare(&paired, &sem) {
        let lines: Vec<String> = events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap_or_default())
            .collect();
        panic!(
            "{e}\ninitial {}, nil reads unknown {}\n{}",
            sem.initial,
            sem.nil_reads_unknown,
            lines.join("\n")
        );
    }
});
