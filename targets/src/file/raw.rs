//! The target file as TOML gives it (every field that a later check can refuse keeps its
//! place in the file), and how a place in the file becomes a line, a column and a field.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    /// The file format's version; 1 when given.
    pub version: Option<Spanned<i64>>,
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub program: Spanned<RawProgram>,
    pub node: RawNode,
    pub readiness: Spanned<RawReadiness>,
    #[serde(default)]
    pub leader: Option<Spanned<RawLeader>>,
    #[serde(default)]
    pub clock: Option<RawClock>,
    pub client: Spanned<RawClient>,
    pub claims: Spanned<Vec<Spanned<RawClaim>>>,
    #[serde(default)]
    pub options: BTreeMap<String, Spanned<RawOption>>,
    #[serde(default)]
    pub faults: Vec<Spanned<RawFault>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProgram {
    pub binary: Option<Spanned<String>>,
    pub image: Option<Spanned<String>>,
    #[serde(default)]
    pub hint: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNode {
    pub command: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub env: BTreeMap<String, Spanned<String>>,
    pub port: Spanned<i64>,
    #[serde(default)]
    pub min_nodes: Option<Spanned<i64>>,
    #[serde(default)]
    pub default_nodes: Option<Spanned<i64>>,
    #[serde(default)]
    pub peer_format: Option<Spanned<String>>,
    #[serde(default)]
    pub peer_separator: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReadiness {
    pub http: Option<Spanned<String>>,
    pub tcp: Option<Spanned<i64>>,
    pub command: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLeader {
    pub http: Option<Spanned<String>>,
    pub adapter: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClock {
    pub faults: bool,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClient {
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    #[serde(default)]
    pub port: Option<Spanned<i64>>,
    #[serde(default)]
    pub command: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub cas: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClaim {
    #[serde(default)]
    pub when: Option<Spanned<String>>,
    pub models: Spanned<Vec<Spanned<String>>>,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOption {
    pub values: Vec<String>,
    pub default: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFault {
    pub name: Spanned<String>,
    pub description: String,
    pub exposed_by: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub args: Vec<Spanned<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, Spanned<String>>,
}

/// Line and column (from 1) of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(before.chars().count(), |nl| {
        before[nl + 1..].chars().count()
    }) + 1;
    (line, col)
}

/// The dotted name of the field at byte `offset`: the last table header before it and the
/// key of its line (`node.port`); for a header itself, the header's name.
pub(crate) fn field_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let line_start = text
        .get(..offset)
        .and_then(|b| b.rfind('\n'))
        .map_or(0, |i| i + 1);
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let line = text[line_start..line_end].trim();
    if let Some(h) = header(line) {
        return h;
    }
    let table = text[..line_start]
        .lines()
        .rev()
        .find_map(|l| header(l.trim()))
        .unwrap_or_default();
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .unwrap_or_default();
    match (table.is_empty(), key.is_empty()) {
        (true, _) => key,
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    }
}

/// The name of a table header line (`[node]`, `[[faults]]`, `[options.reads]`).
fn header(line: &str) -> Option<String> {
    // A header cut short (`[leader`) still names its table.
    let inner = line.strip_prefix("[[").or_else(|| line.strip_prefix('['))?;
    let name = inner.split(']').next().unwrap_or(inner);
    Some(name.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_become_lines_columns_and_fields() {
        let text = "name = \"x\"\n[node]\nport = \"z\"\n[[faults]]\nname = 3\n";
        assert_eq!(line_col(text, 0), (1, 1));
        let at = text.find("\"z\"").unwrap_or(0);
        assert_eq!(line_col(text, at), (3, 8));
        assert_eq!(field_at(text, at), "node.port");
        assert_eq!(field_at(text, 0), "name");
        assert_eq!(field_at(text, text.find("[node]").unwrap_or(0)), "node");
        assert_eq!(
            field_at(text, text.rfind("name").unwrap_or(0)),
            "faults.name"
        );
    }
}
