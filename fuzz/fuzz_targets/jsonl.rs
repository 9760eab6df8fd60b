//! The JSONL reader on arbitrary bytes: never panics; what it reads writes back and
//! reads again to the same number of events, and pairing never panics.
#![no_main]

use faultline_history::{write_history, JsonlReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(history) = JsonlReader::new(data, "fuzz").read_all() else {
        return;
    };
    let _ = history.pair("fuzz");
    let mut out = Vec::new();
    if write_history(&mut out, &history).is_err() {
        panic!("writing a history that was read must succeed");
    }
    match JsonlReader::new(&out[..], "again").read_all() {
        Ok(again) => assert_eq!(again.events.len(), history.events.len()),
        Err(e) => panic!("re-reading a written history failed: {e}"),
    }
});
