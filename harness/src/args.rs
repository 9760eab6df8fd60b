//! Parsers of the numeric flags. Each refusal says which values are allowed (clap puts the
//! flag's name in front), and negative numbers reach the parser (`--rate -1` is a rate
//! out of range, not an unknown flag `-1`).

/// A whole number from `min` to `max`.
pub fn whole<T: TryFrom<u64>>(
    min: u64,
    max: u64,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let refuse = || format!("expected a whole number from {min} to {max}");
        let n: u64 = s.trim().parse().map_err(|_| refuse())?;
        if n < min || n > max {
            return Err(refuse());
        }
        T::try_from(n).map_err(|_| refuse())
    }
}

/// A finite number from `min` to `max`; `what` names the unit (`seconds`) and `zero`,
/// when given, what 0 means (`0 (unlimited)`).
pub fn number(
    min: f64,
    max: f64,
    what: &'static str,
    zero: Option<&'static str>,
) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let refuse = || match zero {
            Some(z) => format!("expected {z} or {what} up to {max}"),
            None => format!("expected {what} from {min} to {max}"),
        };
        let v: f64 = s.trim().parse().map_err(|_| refuse())?;
        if !v.is_finite() || v < min || v > max {
            return Err(refuse());
        }
        Ok(v)
    }
}

/// A length of time from `min` to `max` seconds: plain seconds (`90`, `1.5`) or a number
/// with a unit, `ms`, `s`, `m` or `h` (`30s`, `2m`, `1.5h`); the result is in seconds.
pub fn duration(
    min: f64,
    max: f64,
) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let refuse = || {
            format!("expected a duration from {min} to {max} seconds: seconds (90) or a number with a unit (30s, 2m, 1h, 500ms)")
        };
        let t = s.trim();
        let (digits, scale) = [("ms", 1e-3), ("s", 1.0), ("m", 60.0), ("h", 3_600.0)]
            .iter()
            .find_map(|(unit, scale)| t.strip_suffix(unit).map(|d| (d, *scale)))
            .unwrap_or((t, 1.0));
        // `1e3` parses as a number; `inf` and `nan` do too and are refused below.
        let v: f64 = digits.trim().parse().map_err(|_| refuse())?;
        let secs = v * scale;
        if !secs.is_finite() || secs < min || secs > max {
            return Err(refuse());
        }
        Ok(secs)
    }
}

/// A number of client processes: a whole number, or a multiple of the node count (`3n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    /// This many processes.
    Fixed(usize),
    /// This many processes per node.
    PerNode(usize),
}

impl Concurrency {
    /// The number of processes for `nodes` nodes.
    pub fn processes(self, nodes: usize) -> usize {
        match self {
            Concurrency::Fixed(n) => n,
            Concurrency::PerNode(k) => k.saturating_mul(nodes),
        }
    }
}

/// A [`Concurrency`]: `10` or `3n`, with the count (or the multiple) from `min` to `max`.
pub fn concurrency(
    min: u64,
    max: u64,
) -> impl Fn(&str) -> Result<Concurrency, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let t = s.trim();
        let refuse = || {
            format!("expected a whole number from {min} to {max}, or a multiple of the node count such as 3n")
        };
        match t.strip_suffix('n') {
            Some(k) => whole::<usize>(min, max)(k)
                .map(Concurrency::PerNode)
                .map_err(|_| refuse()),
            None => whole::<usize>(min, max)(t)
                .map(Concurrency::Fixed)
                .map_err(|_| refuse()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_enforced_and_named() {
        let nodes = whole::<usize>(1, 9);
        assert_eq!(nodes("3"), Ok(3));
        for bad in ["0", "10", "-1", "x", "18446744073709551616", ""] {
            assert_eq!(
                nodes(bad),
                Err("expected a whole number from 1 to 9".to_string()),
                "{bad}"
            );
        }
        let small = whole::<u8>(0, 1_000);
        assert!(small("300").is_err(), "does not fit the type");
        let secs = number(1.0, 86_400.0, "a number of seconds", None);
        assert_eq!(secs("1.5"), Ok(1.5));
        for bad in ["-5", "0.5", "nan", "inf", "1e9", "soon"] {
            assert_eq!(
                secs(bad),
                Err("expected a number of seconds from 1 to 86400".to_string()),
                "{bad}"
            );
        }
        let rate = number(0.0, 1e6, "operations per second", Some("0 (unlimited)"));
        assert_eq!(rate("0"), Ok(0.0));
        assert_eq!(
            rate("-1"),
            Err("expected 0 (unlimited) or operations per second up to 1000000".to_string())
        );
    }

    #[test]
    fn durations_take_units_and_plain_seconds() {
        let d = duration(1.0, 86_400.0);
        for (text, secs) in [
            ("30", 30.0),
            ("1.5", 1.5),
            ("30s", 30.0),
            ("2m", 120.0),
            ("1h", 3_600.0),
            ("1500ms", 1.5),
            (" 2 m ", 120.0),
        ] {
            assert_eq!(d(text), Ok(secs), "{text}");
        }
        for bad in ["0s", "500ms", "25h", "-1m", "m", "2x", "infs", "nan", ""] {
            assert!(d(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn concurrency_is_a_count_or_a_multiple_of_the_nodes() {
        let c = concurrency(1, 1024);
        assert_eq!(c("10"), Ok(Concurrency::Fixed(10)));
        assert_eq!(c("3n"), Ok(Concurrency::PerNode(3)));
        assert_eq!(c("3n").map(|c| c.processes(5)), Ok(15));
        for bad in ["0", "0n", "n", "-2n", "2.5n", "x", "1025"] {
            assert!(c(bad).is_err(), "{bad}");
        }
    }
}
