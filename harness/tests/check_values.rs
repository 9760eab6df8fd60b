//! `faultline check` on the literal histories of the soundness report: values compare
//! exactly as written (integers beyond 64 bits, decimals, values inside arrays and
//! objects), EDN sets as sets and keywords apart from strings, and repeated values do
//! not make the causal, session and sequential checkers report false violations.

mod check_support;

use check_support::check as run;

/// Exit code and stdout of `faultline check` on `text`.
fn check(name: &str, text: &str, args: &[&str]) -> (i32, String) {
    let r = run(name, text.as_bytes(), args);
    (r.code, r.stdout)
}

/// A write of `w` then a read of `r`, one register, as JSONL (the numbers as written).
fn write_then_read(w: &str, r: &str) -> String {
    format!(
        r#"{{"index":0,"time":0,"process":0,"type":"invoke","f":"write","value":{w}}}
{{"index":1,"time":1,"process":0,"type":"ok","f":"write","value":{w}}}
{{"index":2,"time":2,"process":1,"type":"invoke","f":"read","value":null}}
{{"index":3,"time":3,"process":1,"type":"ok","f":"read","value":{r}}}
"#
    )
}

#[test]
fn integers_beyond_64_bits_and_decimals_compare_exactly() {
    let different = [
        ("18446744073709551616", "18446744073709551617"),
        ("-9223372036854775809", "-9223372036854775810"),
        ("1e23", "100000000000000000000001"),
        ("1e23", "1.0000000000000001e23"),
        ("[18446744073709551616]", "[18446744073709551617]"),
        (
            r#"{"a":18446744073709551616}"#,
            r#"{"a":18446744073709551617}"#,
        ),
        ("1", "1.0"),
    ];
    for (w, r) in different {
        let (code, out) = check("big.jsonl", &write_then_read(w, r), &["--model", "all"]);
        assert_eq!(code, 1, "write {w}, read {r}: a violation\n{out}");
        assert!(out.contains("linearizable  invalid"), "{out}");
    }
    let same = [
        ("18446744073709551616", "18446744073709551616"),
        ("1.50", "15e-1"),
        (r#"{"a":1,"b":2}"#, r#"{"b":2,"a":1}"#),
    ];
    for (w, r) in same {
        let (code, out) = check("same.jsonl", &write_then_read(w, r), &["--model", "all"]);
        assert_eq!(code, 0, "write {w}, read {r}: the same value\n{out}");
    }
}

/// One register in Jepsen EDN: a write of `w`, then a read of `r`.
fn edn_write_then_read(w: &str, r: &str) -> String {
    format!(
        "{{:process 0 :type :invoke :f :write :value {w}}}\n\
         {{:process 0 :type :ok :f :write :value {w}}}\n\
         {{:process 1 :type :invoke :f :read :value nil}}\n\
         {{:process 1 :type :ok :f :read :value {r}}}\n"
    )
}

#[test]
fn edn_sets_compare_as_sets_and_keywords_are_not_strings() {
    let cases = [
        ("#{1 2}", "#{2 1}", 0),
        ("#{1 2}", "#{1 2 3}", 1),
        ("#{1 2}", "[1 2]", 1),
        (":a", "\"a\"", 1),
        (":a", ":a", 0),
        ("a", "\"a\"", 1),
        ("\\a", "\"a\"", 1),
        ("[1 2]", "(1 2)", 0),
        ("{:a #{1 2}}", "{:a #{2 1}}", 0),
        ("{:a 1}", "{\"a\" 1}", 1),
        ("123456789012345678901", "123456789012345678902", 1),
        ("123456789012345678901N", "123456789012345678901", 0),
        ("1.5", "1.50", 0),
        ("1.5M", "1.5", 1),
        ("0.1000000000000000000001", "0.1", 1),
    ];
    for (w, r, code) in cases {
        let (got, out) = check(
            "sets.edn",
            &edn_write_then_read(w, r),
            &["--model", "linearizable"],
        );
        assert_eq!(got, code, "EDN write {w}, read {r}\n{out}");
    }
}

#[test]
fn repeated_values_do_not_make_false_violations() {
    let text = r#"{"index":0,"time":0,"process":1,"type":"invoke","f":"cas","value":[1,2]}
{"index":1,"time":10,"process":1,"type":"info","f":"cas","value":[1,2]}
{"index":2,"time":20,"process":2,"type":"invoke","f":"read","value":null}
{"index":3,"time":30,"process":2,"type":"ok","f":"read","value":2}
{"index":4,"time":40,"process":0,"type":"invoke","f":"write","value":2}
{"index":5,"time":50,"process":0,"type":"ok","f":"write","value":2}
"#;
    let (code, out) = check("repeated.jsonl", text, &["--model", "all"]);
    assert_eq!(code, 1, "linearizability is violated\n{out}");
    let table = out
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("Strongest"));
    for line in table {
        let model = line.split_whitespace().next().unwrap_or_default();
        if model == "linearizable" {
            assert!(line.contains("invalid"), "{line}");
        } else {
            assert!(
                line.contains("valid") && !line.contains("invalid"),
                "{model} must hold: {line}\n{out}"
            );
        }
    }
    assert!(
        out.contains("Strongest models that held: sequential"),
        "{out}"
    );
}
