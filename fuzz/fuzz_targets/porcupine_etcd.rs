//! The Porcupine etcd log importer on arbitrary bytes: never panics, and never
//! returns a history without a client event.
#![no_main]

use faultline_history::import::{parse_bytes, Format, ImportOptions};
use faultline_history::Process;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = parse_bytes(data, "fuzz", Format::Porcupine, &ImportOptions::default()) {
        // No operations is refused, never loaded as an empty history.
        assert!(h
            .events
            .iter()
            .any(|e| matches!(e.process, Process::Client(_))));
        let _ = h.pair("fuzz");
    }
});
