//! The JSONL reader checks the pairing rules as it reads, so a completion that does not
//! match its invoke is an error naming the file and its line (not only an event index).

use faultline_history::import::{parse_bytes, Format, ImportOptions};
use faultline_history::HistoryError;

const HEADER: &str = "{\"format\":\"faultline-history\",\"version\":1}\n";

fn expect_line_error(events: &str, line: usize, expected: &[&str]) {
    let text = format!("{HEADER}{events}");
    match parse_bytes(
        text.as_bytes(),
        "s.jsonl",
        Format::Auto,
        &ImportOptions::default(),
    ) {
        Err(HistoryError::Parse {
            file,
            line: n,
            message,
        }) => {
            assert_eq!((file.as_str(), n), ("s.jsonl", line), "{events}: {message}");
            for e in expected {
                assert!(message.contains(e), "{events}: {message} lacks {e:?}");
            }
        }
        other => panic!("{events}: expected an error on line {line}, got {other:?}"),
    }
}

#[test]
fn a_completion_that_does_not_match_its_invoke_names_its_line() {
    let invoke = "{\"index\":0,\"time\":5,\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"x\",\"value\":1}\n";
    let cases = [
        (
            "{\"index\":1,\"time\":6,\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"key\":\"y\",\"value\":1}\n",
            vec!["key y", "key x", "line 2"],
        ),
        (
            "{\"index\":1,\"time\":4,\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"key\":\"x\",\"value\":1}\n",
            vec!["time 4", "time 5", "line 2"],
        ),
        (
            "{\"index\":1,\"time\":6,\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":1}\n",
            vec!["completes read", "write", "line 2"],
        ),
        (
            "{\"index\":1,\"time\":6,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n",
            vec!["process 0", "has not completed", "line 2"],
        ),
        (
            "{\"index\":1,\"time\":6,\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"value\":1}\n",
            vec!["process 1", "no operation in flight"],
        ),
    ];
    for (completion, expected) in cases {
        expect_line_error(&format!("{invoke}{completion}"), 3, &expected);
    }
}

#[test]
fn a_completion_may_omit_the_key_and_a_process_may_run_again() {
    let text = format!(
        "{HEADER}{}{}{}{}",
        "{\"index\":0,\"time\":5,\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"x\",\"value\":1}\n",
        "{\"index\":1,\"time\":5,\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1}\n",
        "{\"index\":2,\"time\":7,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"x\",\"value\":null}\n",
        "{\"index\":3,\"time\":9,\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"kill\",\"value\":null}\n",
    );
    let h = parse_bytes(
        text.as_bytes(),
        "s.jsonl",
        Format::Auto,
        &ImportOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.events.len(), 4);
}
