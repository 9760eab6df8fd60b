//! The JSONL reader on arbitrary bytes: never panics; reading through a small buffer
//! gives the same result as reading in place; what it reads has increasing indexes,
//! writes back and reads again to the same events; a skipped tail is only ever a last
//! line without a newline, and every cut of the last written line is skipped as cut
//! short (never refused); pairing never panics.
#![no_main]

use faultline_history::{write_history, History, HistoryError, JsonlReader};
use libfuzzer_sys::fuzz_target;
use std::io::BufReader;

fn read(bytes: &[u8]) -> Result<History, HistoryError> {
    JsonlReader::new(bytes, "fuzz").read_all()
}

fuzz_target!(|data: &[u8]| {
    let result = read(data);
    let small = JsonlReader::new(BufReader::with_capacity(7, data), "fuzz").read_all();
    match (&result, &small) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("in place {result:?}, through a small buffer {small:?}"),
    }
    let Ok(history) = result else {
        return;
    };
    assert!(history.events.windows(2).all(|w| w[0].index < w[1].index));
    if history.truncated_tail {
        assert!(
            !data.ends_with(b"\n"),
            "a skipped tail must be a last line with no newline"
        );
    }
    let _ = history.pair("fuzz");
    let mut out = Vec::new();
    if write_history(&mut out, &history).is_err() {
        panic!("writing a history that was read must succeed");
    }
    match read(&out) {
        Ok(again) => {
            assert_eq!(again.events, history.events);
            assert!(!again.truncated_tail);
        }
        Err(e) => panic!("re-reading a written history failed: {e}"),
    }
    // Every cut inside the last written line is what a stopped writer leaves.
    let last_start = out[..out.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let n = history.events.len();
    if n > 0 && out.len() - last_start <= 400 {
        for cut in last_start + 1..out.len() - 1 {
            match read(&out[..cut]) {
                Ok(h) => {
                    assert!(h.truncated_tail, "cut at {cut} not reported");
                    assert_eq!(h.events, history.events[..n - 1]);
                }
                Err(e) => panic!(
                    "a cut of a written line was refused: {e}: {:?}",
                    String::from_utf8_lossy(&out[last_start..cut])
                ),
            }
        }
    }
});
