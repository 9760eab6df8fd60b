//! Format detection and loading of arbitrary bytes: never panics, detection never
//! answers `Auto`, a loaded history has a client event (no "valid (0 ops)"), and
//! reading the bytes as a stream (`read_from`) gives what reading them in memory gives.
#![no_main]

use faultline_history::import::{detect, parse_bytes, read_from, Format, ImportOptions, Limits};
use faultline_history::Process;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    assert_ne!(detect(data), Format::Auto);
    let opts = ImportOptions::default();
    let in_memory = parse_bytes(data, "fuzz", Format::Auto, &opts);
    let streamed = read_from(data, "fuzz", Format::Auto, &opts, &Limits::default());
    match (&in_memory, &streamed) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("in memory {in_memory:?}, streamed {streamed:?}"),
    }
    if let Ok(h) = in_memory {
        assert!(h
            .events
            .iter()
            .any(|e| matches!(e.process, Process::Client(_))));
        let _ = h.pair("fuzz");
    }
});
