//! The Jepsen EDN importer and the generic EDN reader on arbitrary bytes: never panic,
//! and the importer never returns a history without a client event.
#![no_main]

use faultline_history::import::{edn, parse_bytes, Format, ImportOptions, Independent};
use faultline_history::Process;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the options, so every combination is explored.
    let (opts, data) = match data.split_first() {
        Some((b, rest)) => {
            let independent = match b % 3 {
                0 => Independent::Auto,
                1 => Independent::On,
                _ => Independent::Off,
            };
            (
                ImportOptions {
                    independent,
                    nil_reads_unknown: b & 4 == 0,
                },
                rest,
            )
        }
        None => (ImportOptions::default(), data),
    };
    if let Ok(h) = parse_bytes(data, "fuzz", Format::Edn, &opts) {
        // No operations is refused, never loaded as an empty history.
        assert!(h
            .events
            .iter()
            .any(|e| matches!(e.process, Process::Client(_))));
        let _ = h.pair("fuzz");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(forms) = edn::parse_all(text, "fuzz") {
            for f in &forms {
                let _ = f.to_json();
            }
        }
    }
});
