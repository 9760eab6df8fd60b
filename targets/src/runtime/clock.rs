//! libfaketime settings for a node and its clock dir on the host.
//!
//! A node started with [`default_faketime_env`] reads its wall-clock offset
//! from `/faketime/rc`, which is the file `rc` in the node's clock dir on the
//! host. Measured with libfaketime 0.9.10 (Debian 12):
//!
//! - a missing or empty `rc` leaves the clock real (no error);
//! - an `rc` that does not parse (for example `garbage`) makes libfaketime
//!   print "failed to parse FAKETIME timestamp" and **exit the process with
//!   status 1**, so the runtime writes `+0` before a node starts and
//!   [`write_offset`] refuses text that is not an offset;
//! - with `FAKETIME_CACHE_DURATION=1` a change is seen within about 1.5 s.

use std::path::Path;

/// Name of the timestamp file inside a clock dir (the nemesis writes the same file).
pub const RC_FILE: &str = faultline_nemesis::clock::TIMESTAMP_FILE;
/// What the timestamp file holds when the clock is not shifted.
pub const NO_OFFSET: &str = "+0";

/// The environment that makes a node's wall clock follow `/faketime/rc`, as the nemesis
/// defines it ([`faultline_nemesis::clock::faketime_env`]): `LD_PRELOAD` of libfaketime,
/// `FAKETIME_TIMESTAMP_FILE=/faketime/rc`, `FAKETIME_DONT_FAKE_MONOTONIC=1` (monotonic
/// clocks stay real) and `FAKETIME_CACHE_DURATION=1` (re-read the file every second;
/// `NO_CACHE` costs ~5.7 µs per clock read).
pub fn default_faketime_env() -> Vec<(String, String)> {
    let rc = Path::new(super::rootfs::CLOCK_MOUNT).join(RC_FILE);
    faultline_nemesis::clock::faketime_env(
        Path::new(super::rootfs::FAKETIME_LIB),
        &rc,
        faultline_nemesis::clock::CacheMode::OneSecond,
    )
}

/// Whether `text` is a relative offset libfaketime accepts: a sign, digits,
/// an optional fraction and an optional unit among `s m h d y`
/// (`+0`, `-1800`, `+3600s`, `+1.5h`).
pub fn is_valid_offset(text: &str) -> bool {
    let t = text.trim();
    let Some(rest) = t.strip_prefix('+').or_else(|| t.strip_prefix('-')) else {
        return false;
    };
    let number = rest.strip_suffix(['s', 'm', 'h', 'd', 'y']).unwrap_or(rest);
    let (int, frac) = match number.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (number, None),
    };
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    digits(int)
        && match frac {
            None => true,
            Some(f) => digits(f),
        }
}

/// Writes `offset` to `clock_dir/rc` atomically (write `rc.tmp`, then rename),
/// so that a node never reads half a file. Refuses an invalid offset with
/// `InvalidInput`, because libfaketime would kill the node on it.
pub fn write_offset(clock_dir: &Path, offset: &str) -> std::io::Result<()> {
    if !is_valid_offset(offset) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{offset:?} is not a libfaketime offset such as +0, -30s or +1.5h"),
        ));
    }
    let tmp = clock_dir.join(format!("{RC_FILE}.tmp"));
    std::fs::write(&tmp, format!("{}\n", offset.trim()))?;
    std::fs::rename(&tmp, clock_dir.join(RC_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_env() {
        let env = default_faketime_env();
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            get("LD_PRELOAD"),
            Some("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
        );
        assert_eq!(get("FAKETIME_TIMESTAMP_FILE"), Some("/faketime/rc"));
        assert_eq!(get("FAKETIME_DONT_FAKE_MONOTONIC"), Some("1"));
        assert_eq!(get("FAKETIME_CACHE_DURATION"), Some("1"));
        assert_eq!(env.len(), 4);
    }

    #[test]
    fn offsets() {
        for ok in ["+0", "-1800", "+3600s", "+1.5h", "-2d", "+10m", " +5 "] {
            assert!(is_valid_offset(ok), "{ok}");
        }
        for bad in [
            "",
            "0",
            "3600",
            "garbage",
            "+",
            "+1.",
            "+.5",
            "+1x",
            "@2020-01-01",
            "+1 x2",
        ] {
            assert!(!is_valid_offset(bad), "{bad}");
        }
    }

    #[test]
    fn writes_atomically() {
        let dir = std::env::temp_dir().join(format!("faultline-clock-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_offset(&dir, "+3600s").unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("rc")).unwrap(), "+3600s\n");
        assert!(!dir.join("rc.tmp").exists());
        let err = write_offset(&dir, "garbage").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert_eq!(std::fs::read_to_string(dir.join("rc")).unwrap(), "+3600s\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
