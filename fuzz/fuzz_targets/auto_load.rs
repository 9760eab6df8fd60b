//! Format detection and loading of arbitrary bytes: never panics, and detection never
//! answers `Auto`.
#![no_main]

use faultline_history::import::{detect, parse_bytes, Format, ImportOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    assert_ne!(detect(data), Format::Auto);
    if let Ok(h) = parse_bytes(data, "fuzz", Format::Auto, &ImportOptions::default()) {
        let _ = h.pair("fuzz");
    }
});
