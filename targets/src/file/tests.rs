//! The loader on a valid file and on malformed ones: every refusal names the file, the
//! line and the field.

use std::collections::BTreeMap;
use std::path::Path;

use super::*;

const MODELS: &[&str] = &["linearizable", "sequential", "ryw"];

/// A valid adapter target; `/bin/sh` stands in for both programs.
const BASE: &str = r#"version = 1
name = "mydb"

[program]
binary = "/bin/sh"

[node]
command = ["serve", "--name", "{name}", "--peers", "{peers}", "--data", "{data_dir}", "--reads", "{option.reads}"]
env = { TOKEN = "{token}" }
port = 9000
peer_format = "{name}=http://{ip}:9001"
min_nodes = 3
default_nodes = 3

[readiness]
tcp = 9000

[leader]
adapter = true

[clock]
faults = false
reason = "a Go program"

[client]
type = "adapter"
command = ["/bin/sh", "-c", "exit 0", "{ip}:{port}"]

[options.reads]
values = ["linearizable", "serializable"]
default = "linearizable"

[[claims]]
models = ["linearizable"]
reason = "consensus"

[[claims]]
when = "reads=serializable"
models = ["sequential"]
reason = "local reads"

[[faults]]
name = "stale"
description = "stale reads"
exposed_by = ["partition"]
args = ["--stale"]
"#;

fn load(text: &str) -> Result<TargetFile, FileError> {
    TargetFile::parse(Path::new("/tmp/t/mydb.toml"), text, MODELS)
}

fn ctx<'a>(
    index: usize,
    hosts: &'a [String],
    faults: &'a [String],
    options: &'a BTreeMap<String, String>,
) -> DeployContext<'a> {
    DeployContext {
        index,
        hosts,
        data_dir: "/data",
        faults,
        options,
        request_timeout_ms: 1000,
        token: "tok",
    }
}

#[test]
fn a_valid_file_gives_command_lines_environment_claims_and_faults() {
    let t = load(BASE).expect("valid");
    assert_eq!((t.name(), t.port(), t.min_nodes()), ("mydb", 9000, 3));
    assert!(t.has_leader() && t.offers_cas());
    assert_eq!(t.clock_faults(), Err("a Go program".to_string()));
    let hosts = ["10.1.0.11".to_string(), "10.1.0.12".to_string()];
    let faults = vec!["stale".to_string()];
    let mut options = BTreeMap::new();
    let c = ctx(1, &hosts, &faults, &options);
    assert_eq!(
        t.node_args(&c).join(" "),
        "serve --name n2 --peers n1=http://10.1.0.11:9001,n2=http://10.1.0.12:9001 --data /data --reads linearizable --stale"
    );
    assert_eq!(
        t.node_env(&c),
        vec![("TOKEN".to_string(), "tok".to_string())]
    );
    assert_eq!(t.ready_probe(&c), ReadyProbe::Tcp { port: 9000 });
    let claims = |o: &BTreeMap<String, String>| {
        t.claims(&ClaimContext {
            nodes: 3,
            options: Some(o),
            clock_faults: false,
        })
        .models
    };
    assert_eq!(claims(&options), vec!["linearizable"]);
    options.insert("reads".into(), "serializable".into());
    assert_eq!(claims(&options), vec!["sequential"]);
    assert!(t.check_options(&options, 3).is_ok());
    options.insert("reads".into(), "stale".into());
    assert!(t
        .check_options(&options, 3)
        .is_err_and(|e| e.to_string().contains("linearizable, serializable")));
    assert!(t.check_fault("stale").is_ok() && t.check_fault("x").is_err());
}

#[test]
fn the_example_target_files_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/targets");
    for (file, binary) in [
        ("faultline-node.toml", "/bin/sh"),
        ("etcd-adapter.toml", ""),
    ] {
        let Ok(text) = std::fs::read_to_string(dir.join(file)) else {
            panic!("{file} is missing");
        };
        // The bundled node may not be built here: point at a program that exists.
        let text = if binary.is_empty() {
            text
        } else {
            text.lines()
                .map(|l| {
                    if l.starts_with("binary =") {
                        format!("binary = \"{binary}\"")
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let t = TargetFile::parse(&dir.join(file), &text, &["linearizable", "sequential"]);
        assert!(t.is_ok(), "{file}: {:?}", t.err().map(|e| e.to_string()));
    }
}

/// Replaces the first occurrence of `from` in the base file by `to` and loads it; the error
/// must name the file, `line` and `field`, and contain `needle`.
fn refused(from: &str, to: &str, line: usize, field: &str, needle: &str) {
    assert!(BASE.contains(from), "the base file has no {from:?}");
    let text = BASE.replacen(from, to, 1);
    let err = load(&text).err().map(|e| e.to_string()).unwrap_or_default();
    let place = format!("/tmp/t/mydb.toml:{line}:");
    assert!(
        err.starts_with(&place),
        "{from:?} -> {to:?}: want {place} in {err}"
    );
    assert!(
        err.contains(&format!(": {field}: ")),
        "{from:?} -> {to:?}: want field {field} in {err}"
    );
    assert!(
        err.contains(needle),
        "{from:?} -> {to:?}: want {needle:?} in {err}"
    );
}

#[test]
fn malformed_files_are_refused_with_file_line_and_field() {
    // 1. Missing fields.
    refused("name = \"mydb\"\n", "", 1, "name", "missing field `name`");
    refused("port = 9000\n", "", 7, "node.port", "missing field `port`");
    // 2. Wrong types.
    refused(
        "port = 9000",
        "port = \"9000\"",
        10,
        "node.port",
        "invalid type: string",
    );
    refused(
        "min_nodes = 3",
        "min_nodes = [3]",
        12,
        "node.min_nodes",
        "invalid type",
    );
    // 3. Unknown placeholders.
    refused(
        "{data_dir}",
        "{datadir}",
        8,
        "node.command",
        "unknown placeholder {datadir}",
    );
    refused(
        "{ip}:{port}\"]",
        "{peers}\"]",
        27,
        "client.command",
        "unknown placeholder {peers}",
    );
    // 4. An unknown model.
    refused(
        "[\"sequential\"]",
        "[\"snapshot\"]",
        39,
        "claims[1].models",
        "unknown model \"snapshot\"",
    );
    // 5. A missing binary, a missing adapter program.
    refused(
        "\"/bin/sh\"\n\n[node]",
        "\"/nonexistent/db\"\n\n[node]",
        5,
        "program.binary",
        "no such file",
    );
    refused(
        "command = [\"/bin/sh\", \"-c\"",
        "command = [\"./adapter.py\", \"-c\"",
        27,
        "client.command",
        "not found",
    );
    // 6. A misspelt field.
    refused(
        "peer_format",
        "peer_fromat",
        11,
        "node.peer_fromat",
        "unknown field `peer_fromat`",
    );
    // 7. Both a binary and an image.
    refused(
        "binary = \"/bin/sh\"",
        "binary = \"/bin/sh\"\nimage = \"mydb:1\"",
        4,
        "program",
        "exactly one of",
    );
    // 8. An unknown client type; an adapter without a command.
    refused(
        "type = \"adapter\"",
        "type = \"grpc\"",
        26,
        "client.type",
        "http-kv or adapter",
    );
    refused(
        "command = [\"/bin/sh\", \"-c\", \"exit 0\", \"{ip}:{port}\"]\n",
        "",
        25,
        "client.command",
        "needs command",
    );
    // 9. No readiness; a claim on an undeclared option.
    refused("tcp = 9000", "", 15, "readiness", "exactly one of");
    refused(
        "when = \"reads=serializable\"",
        "when = \"mode=fast\"",
        38,
        "claims[1].when",
        "no option \"mode\"",
    );
    // 10. A fault exposed by a family that does not exist; a bad option default.
    refused(
        "[\"partition\"]\nargs",
        "[\"earthquake\"]\nargs",
        45,
        "faults[0].exposed_by",
        "earthquake",
    );
    refused(
        "default = \"linearizable\"",
        "default = \"fast\"",
        31,
        "options.reads.default",
        "not one of values",
    );
    // Not TOML at all; a newer format.
    refused("[leader]", "[leader", 18, "leader", "");
    refused(
        "version = 1",
        "version = 2",
        1,
        "version",
        "version 1, not 2",
    );
}
