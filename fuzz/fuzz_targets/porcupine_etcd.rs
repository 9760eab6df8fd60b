//! The Porcupine etcd log importer on arbitrary bytes: never panics.
#![no_main]

use faultline_history::import::{parse_bytes, Format, ImportOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = parse_bytes(data, "fuzz", Format::Porcupine, &ImportOptions::default()) {
        let _ = h.pair("fuzz");
    }
});
