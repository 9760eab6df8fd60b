//! A history with no client operation is refused in every format, never checked as
//! "valid (0 ops)": an empty file, only a header, only blank lines or comments, only
//! nemesis events, or only a cut-short last line.

use faultline_history::import::{parse_bytes, Format, ImportOptions};
use faultline_history::load;

const HEADER: &str = "{\"format\":\"faultline-history\",\"version\":1}\n";
const NEMESIS: &str =
    "{\"index\":0,\"time\":1,\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"kill\",\"value\":null}\n";

/// Parses `text` as `format` and expects a "no operations" error naming `file:line`.
fn expect_no_operations(text: &str, format: Format, line: usize, found: &str) {
    match parse_bytes(text.as_bytes(), "n.hist", format, &ImportOptions::default()) {
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!("n.hist:{line}: no operations")),
                "{format} {text:?}: {msg}"
            );
            assert!(
                msg.contains(found),
                "{format} {text:?}: {msg} lacks {found:?}"
            );
            assert!(msg.contains("client invoke"), "{format} {text:?}: {msg}");
        }
        other => panic!("{format} {text:?}: expected no operations, got {other:?}"),
    }
}

#[test]
fn an_empty_input_has_no_operations_in_every_format() {
    for format in [Format::Auto, Format::Jsonl, Format::Edn, Format::Porcupine] {
        expect_no_operations("", format, 1, "empty");
        expect_no_operations("\n\n  \n", format, 3, "blank");
    }
}

#[test]
fn jsonl_with_only_a_header_or_nemesis_events_has_no_operations() {
    expect_no_operations(HEADER, Format::Jsonl, 1, "header");
    expect_no_operations(&format!("{HEADER}\n"), Format::Auto, 2, "header");
    expect_no_operations(NEMESIS, Format::Jsonl, 1, "1 nemesis event");
    let two = format!(
        "{HEADER}{NEMESIS}{}",
        NEMESIS
            .replace("\"index\":0", "\"index\":1")
            .replace("kill", "start")
    );
    expect_no_operations(&two, Format::Auto, 3, "2 nemesis events");
    // A cut-short last line is never the only content.
    let cut = format!("{HEADER}{{\"index\":0,\"time\":1,\"process\":0,\"type\":\"inv");
    expect_no_operations(&cut, Format::Jsonl, 2, "cut short");
}

#[test]
fn edn_and_porcupine_with_only_nemesis_events_or_comments_have_no_operations() {
    expect_no_operations(
        "{:process :nemesis :type :info :f :start :value nil}\n",
        Format::Edn,
        1,
        "1 nemesis event",
    );
    expect_no_operations("[]\n", Format::Auto, 1, "no events");
    expect_no_operations("; nothing here\n", Format::Edn, 1, "no events");
    expect_no_operations(
        "INFO  jepsen.util - :nemesis\t:info\t:start\tnil\n",
        Format::Porcupine,
        1,
        "1 nemesis event",
    );
}

#[test]
fn client_completions_without_an_invoke_are_a_pairing_error_naming_the_line() {
    let text = "{\"index\":0,\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":1}\n";
    match parse_bytes(
        text.as_bytes(),
        "n.hist",
        Format::Jsonl,
        &ImportOptions::default(),
    ) {
        Err(e) => assert!(
            e.to_string().starts_with(
                "n.hist:1: ok completion of read by process 0 with no operation in flight"
            ),
            "{e}"
        ),
        Ok(h) => panic!("expected a pairing error, got {h:?}"),
    }
}

#[test]
fn loading_an_empty_file_names_it() {
    let dir = std::env::temp_dir().join(format!("faultline-noops-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join("empty.jsonl");
    std::fs::write(&path, "").unwrap_or_else(|e| panic!("{e}"));
    for format in [Format::Auto, Format::Jsonl, Format::Edn, Format::Porcupine] {
        match load(&path, format) {
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("empty.jsonl:1: no operations"),
                    "{format}: {msg}"
                );
            }
            other => panic!("{format}: expected no operations, got {other:?}"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
