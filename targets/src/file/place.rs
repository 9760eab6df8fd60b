//! Placing a refusal in the target file (line, column, field), and the small checks the
//! loader repeats on many fields (templates, ports, programs on the host).

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::raw::{field_at, line_col};
use super::template::Template;
use super::FileError;

/// The most nodes a campaign runs (the plan's own bound).
pub(super) const MAX_NODES: i64 = 9;

/// Builds errors placed in one file.
pub(super) struct Placer<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
}

impl Placer<'_> {
    pub(super) fn at(
        &self,
        span: Range<usize>,
        field: &str,
        message: impl Into<String>,
    ) -> FileError {
        let (line, column) = line_col(self.text, span.start);
        FileError::Invalid {
            path: self.path.to_path_buf(),
            line,
            column,
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// A TOML or serde error: placed at its span, the field found from the text (a
    /// missing field is named by the message and added to the table's name).
    pub(super) fn toml(&self, e: &toml::de::Error) -> FileError {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim().to_string();
        let mut field = field_at(self.text, span.start);
        if let Some(missing) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
        {
            let table_line = self.text[span.start.min(self.text.len())..]
                .lines()
                .next()
                .unwrap_or("")
                .trim();
            field = if table_line.starts_with('[') && !field.is_empty() {
                format!("{field}.{missing}")
            } else {
                missing.to_string()
            };
        }
        if field.is_empty() {
            field = "(file)".to_string();
        }
        self.at(span, &field, message)
    }
}

pub(super) fn template(
    p: &Placer<'_>,
    s: &Spanned<String>,
    field: &str,
    allowed: &[&str],
    options: &[&str],
) -> Result<Template, FileError> {
    Template::parse(s.get_ref(), allowed, options).map_err(|m| p.at(s.span(), field, m))
}

pub(super) fn templates(
    p: &Placer<'_>,
    list: &[Spanned<String>],
    field: &str,
    allowed: &[&str],
    options: &[&str],
) -> Result<Vec<Template>, FileError> {
    list.iter()
        .map(|s| template(p, s, field, allowed, options))
        .collect()
}

pub(super) fn port(p: &Placer<'_>, v: &Spanned<i64>, field: &str) -> Result<u16, FileError> {
    match u16::try_from(*v.get_ref()) {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(p.at(
            v.span(),
            field,
            format!("a port is a number from 1 to 65535, got {}", v.get_ref()),
        )),
    }
}

/// Where a program named in the file is: a path with a `/` is taken from the file's
/// folder; a bare name is looked up in `PATH`.
pub(super) fn locate(dir: &Path, program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = dir.join(program);
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}
