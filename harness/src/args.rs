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
}
