//! How the node compares JSON values (cas's `expected` with the value held).
//!
//! Two values are the same when they have the same exact value, which is what faultline's
//! harness compares (the canonical text of a value):
//!
//! - numbers by exact decimal value, whatever their text: `1`, `1.0`, `1e0` and `10E-1`
//!   are the same, `0` and `-0` too; `0.1` is not `0.1000000000000000055511151231257827`
//!   (no rounding to f64), and exponents of any size are compared exactly;
//! - strings by their characters (after JSON unescaping), booleans and `null` by
//!   themselves, arrays element by element in order, objects key by key whatever the key
//!   order;
//! - values of different types are never the same (`1` is not `"1"`).
//!
//! Values are stored and answered with their own text: serde_json's `arbitrary_precision`
//! keeps a number's digits (it only writes an exponent with its sign: `1e400` comes back as
//! `1e+400`, the same number).

use std::cmp::Ordering;

use serde_json::{Number, Value};

/// Whether `a` and `b` are the same value (see the module docs).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => Decimal::of(x) == Decimal::of(y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => false,
    }
}

/// A number as an exact decimal: `±digits × 10^exp`, with `digits` free of leading and
/// trailing zeros (empty for zero, whose sign and exponent are then dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    exp: BigInt,
}

impl Decimal {
    fn of(n: &Number) -> Self {
        Self::parse(&n.to_string())
    }

    /// Parses JSON number text (`-?int(.frac)?([eE][+-]?exp)?`).
    fn parse(text: &str) -> Self {
        let (negative, rest) = match text.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, text),
        };
        let (mantissa, exponent) = match rest.find(['e', 'E']) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, "0"),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let mut digits: Vec<u8> = int
            .bytes()
            .chain(frac.bytes())
            .skip_while(|d| *d == b'0')
            .map(|d| d.wrapping_sub(b'0'))
            .collect();
        let mut trailing = 0usize;
        while digits.last() == Some(&0) {
            digits.pop();
            trailing += 1;
        }
        if digits.is_empty() {
            return Self {
                negative: false,
                digits,
                exp: BigInt::zero(),
            };
        }
        // value = digits × 10^(exponent − frac.len() + trailing)
        let shift = i128::try_from(trailing).unwrap_or(i128::MAX)
            - i128::try_from(frac.len()).unwrap_or(i128::MAX);
        Self {
            negative,
            digits,
            exp: BigInt::parse(exponent).add_small(shift),
        }
    }
}

/// A signed integer of any size, in decimal digits (least significant first, no leading
/// zeros; zero is empty and not negative). Only what exponents need: parsing and adding a
/// small number.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BigInt {
    negative: bool,
    digits: Vec<u8>,
}

impl BigInt {
    fn zero() -> Self {
        Self {
            negative: false,
            digits: Vec::new(),
        }
    }

    fn normalized(negative: bool, mut digits: Vec<u8>) -> Self {
        while digits.last() == Some(&0) {
            digits.pop();
        }
        let negative = negative && !digits.is_empty();
        Self { negative, digits }
    }

    /// Parses `[+-]?digits`.
    fn parse(text: &str) -> Self {
        let (negative, digits) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let digits = digits.bytes().rev().map(|d| d.wrapping_sub(b'0')).collect();
        Self::normalized(negative, digits)
    }

    fn from_i128(v: i128) -> Self {
        let digits = v
            .unsigned_abs()
            .to_string()
            .bytes()
            .rev()
            .map(|d| d - b'0')
            .collect();
        Self::normalized(v < 0, digits)
    }

    fn add_small(self, v: i128) -> Self {
        self.add(&Self::from_i128(v))
    }

    fn add(self, other: &Self) -> Self {
        if self.negative == other.negative {
            return Self::normalized(self.negative, add_magnitudes(&self.digits, &other.digits));
        }
        match cmp_magnitudes(&self.digits, &other.digits) {
            Ordering::Equal => Self::zero(),
            Ordering::Greater => {
                Self::normalized(self.negative, sub_magnitudes(&self.digits, &other.digits))
            }
            Ordering::Less => {
                Self::normalized(other.negative, sub_magnitudes(&other.digits, &self.digits))
            }
        }
    }
}

fn cmp_magnitudes(a: &[u8], b: &[u8]) -> Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.iter().rev().cmp(b.iter().rev()))
}

fn add_magnitudes(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len().max(b.len()) + 1);
    let mut carry = 0;
    for i in 0..a.len().max(b.len()) {
        let s = a.get(i).copied().unwrap_or(0) + b.get(i).copied().unwrap_or(0) + carry;
        out.push(s % 10);
        carry = s / 10;
    }
    if carry > 0 {
        out.push(carry);
    }
    out
}

/// `a − b` for `a ≥ b`.
fn sub_magnitudes(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len());
    let mut borrow = 0;
    for (i, &x) in a.iter().enumerate() {
        let y = b.get(i).copied().unwrap_or(0) + borrow;
        if x >= y {
            out.push(x - y);
            borrow = 0;
        } else {
            out.push(x + 10 - y);
            borrow = 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Value {
        serde_json::from_str(text).unwrap_or(Value::Null)
    }

    #[test]
    fn numbers_compare_by_exact_decimal_value() {
        let same_pairs = [
            ("1", "1.0"),
            ("1", "1e0"),
            ("1", "10E-1"),
            ("100", "1e2"),
            ("0", "-0"),
            ("0", "0.000e-99999999999999999999999"),
            ("-0.0", "0e5"),
            ("18446744073709551617", "18446744073709551617.000"),
            ("18446744073709551617", "1.8446744073709551617e19"),
            ("1e400", "10e399"),
            ("1e400", "0.001e403"),
            ("1e99999999999999999999", "0.1e100000000000000000000"),
            ("1e-99999999999999999999", "10e-100000000000000000000"),
            ("-99999999999999999999", "-9.9999999999999999999e19"),
            (
                "123456789012345678901234567890.5",
                "1234567890123456789012345678905e-1",
            ),
        ];
        for (a, b) in same_pairs {
            assert!(same(&v(a), &v(b)), "{a} = {b}");
            assert!(same(&v(b), &v(a)), "{b} = {a}");
        }
        let different = [
            ("1", "2"),
            ("1", "-1"),
            ("18446744073709551617", "18446744073709551616"),
            ("0.1", "0.1000000000000000055511151231257827"),
            ("1e400", "1e401"),
            ("1e99999999999999999999", "1e99999999999999999998"),
            ("1e99999999999999999999", "1e-99999999999999999999"),
            ("5", "0.5"),
            ("12", "21"),
        ];
        for (a, b) in different {
            assert!(!same(&v(a), &v(b)), "{a} ≠ {b}");
        }
    }

    #[test]
    fn other_values_compare_structurally() {
        assert!(same(
            &v(r#"{"a":1,"b":[2.0,{"c":3}]}"#),
            &v(r#"{"b":[2,{"c":3.00}],"a":1e0}"#)
        ));
        assert!(!same(&v(r#"{"a":1}"#), &v(r#"{"a":1,"b":null}"#)));
        assert!(!same(&v(r#"{"a":1}"#), &v(r#"{"b":1}"#)));
        assert!(!same(&v("[1,2]"), &v("[2,1]")));
        assert!(!same(&v("[1]"), &v("[1,1]")));
        assert!(same(&v(r#""é""#), &v(r#""\u00e9""#)));
        assert!(!same(&v("1"), &v(r#""1""#)));
        assert!(!same(&v("null"), &v("0")));
        assert!(!same(&v("false"), &v("0")));
        assert!(same(&v("null"), &v("null")));
        assert!(same(&v("true"), &v("true")));
    }

    #[test]
    fn big_integers_add() {
        let n = |s: &str| BigInt::parse(s);
        assert_eq!(n("999").add_small(1), n("1000"));
        assert_eq!(n("1000").add_small(-1), n("999"));
        assert_eq!(n("-5").add_small(5), BigInt::zero());
        assert_eq!(n("-5").add_small(7), n("2"));
        assert_eq!(n("5").add_small(-7), n("-2"));
        assert_eq!(n("+0007"), n("7"));
        assert_eq!(n("-0"), BigInt::zero());
        assert_eq!(
            n("100000000000000000000000000000000000000000").add_small(-1),
            n("99999999999999999999999999999999999999999")
        );
    }
}
