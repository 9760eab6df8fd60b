//! Placeholders in a target file's templates (node command and environment, readiness
//! command, peer format, adapter command): `{name}` is replaced, `{{` and `}}` are literal
//! braces. Parsing is separate from filling in, so a file is checked once, at load, and an
//! unknown placeholder is an error naming it.

use std::collections::BTreeMap;

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text.
    Text(String),
    /// A placeholder, by name (`ip`, `option.reads`).
    Var(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// The placeholders of a node's command line and environment, and of the readiness
/// command.
pub const NODE_PLACEHOLDERS: &[&str] = &[
    "name",
    "index",
    "id",
    "ip",
    "port",
    "peers",
    "peer_ips",
    "peer_addrs",
    "peer_names",
    "nodes",
    "data_dir",
    "token",
    "request_timeout_ms",
    "target_dir",
];

/// The placeholders of the peer format (one peer).
pub const PEER_PLACEHOLDERS: &[&str] = &["name", "index", "id", "ip", "port"];

/// The placeholders of the adapter's command line.
pub const ADAPTER_PLACEHOLDERS: &[&str] = &["name", "ip", "port", "target_dir"];

impl Template {
    /// Parses `text`, accepting the placeholders in `allowed` and `option.NAME` for the
    /// names in `options`. The error says what is wrong, in words.
    pub fn parse(text: &str, allowed: &[&str], options: &[&str]) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err(format!(
                            "unclosed placeholder {{{name} (write {{{{ for a literal brace)"
                        ));
                    }
                    let known = allowed.contains(&name.as_str())
                        || name
                            .strip_prefix("option.")
                            .is_some_and(|o| options.contains(&o));
                    if !known {
                        let mut list: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
                        list.extend(options.iter().map(|o| format!("option.{o}")));
                        return Err(format!(
                            "unknown placeholder {{{name}}} (known here: {})",
                            list.iter()
                                .map(|a| format!("{{{a}}}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                    if !lit.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut lit)));
                    }
                    pieces.push(Piece::Var(name));
                }
                '}' => return Err("a lone } (write }} for a literal brace)".to_string()),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Text(lit));
        }
        Ok(Template { pieces })
    }

    /// The text with every placeholder replaced by its value in `vars` (a missing one
    /// becomes empty: parsing already refused unknown names).
    pub fn fill(&self, vars: &BTreeMap<String, String>) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(v) => out.push_str(vars.get(v).map(String::as_str).unwrap_or("")),
            }
        }
        out
    }

    /// The placeholders used.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var(v) => Some(v.as_str()),
            Piece::Text(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_braces_escaped() {
        let t = Template::parse(
            "--x={ip}:{port} {{lit}} {option.reads}",
            NODE_PLACEHOLDERS,
            &["reads"],
        )
        .expect("parses");
        let vars: BTreeMap<String, String> = [
            ("ip", "10.0.0.11"),
            ("port", "7001"),
            ("option.reads", "serializable"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(t.fill(&vars), "--x=10.0.0.11:7001 {lit} serializable");
        assert_eq!(
            t.vars().collect::<Vec<_>>(),
            vec!["ip", "port", "option.reads"]
        );
    }

    #[test]
    fn unknown_unclosed_and_lone_braces_are_refused() {
        let e = Template::parse("{hostname}", NODE_PLACEHOLDERS, &[]).expect_err("unknown");
        assert!(
            e.contains("unknown placeholder {hostname}") && e.contains("{ip}"),
            "{e}"
        );
        let e =
            Template::parse("{option.mode}", NODE_PLACEHOLDERS, &["reads"]).expect_err("unknown");
        assert!(e.contains("{option.reads}"), "{e}");
        assert!(Template::parse("{ip", NODE_PLACEHOLDERS, &[]).is_err());
        assert!(Template::parse("a}b", NODE_PLACEHOLDERS, &[]).is_err());
        assert!(Template::parse("{ip}", PEER_PLACEHOLDERS, &[]).is_ok());
        assert!(Template::parse("{peers}", PEER_PLACEHOLDERS, &[]).is_err());
    }
}
