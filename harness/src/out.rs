//! The terminal edge: everything the commands print goes through [`print`] (stdout) and
//! [`eprint`] (stderr), or the [`outln!`](crate::outln) and [`errln!`](crate::errln)
//! macros.
//!
//! Control and bidi characters are shown as escapes there
//! ([`faultline_results::text::visible_lines`]): a key, a node name or an error holding
//! `\u{1b}[31m` or `\u{202e}` cannot colour the terminal, fake a CI log line or reorder
//! what is shown. Line breaks are kept (they are the output's own); text from a history
//! that could hold one is passed through `visible` before it is formatted, and JSON
//! output through `json_visible`.
//!
//! A closed stream is not an error of the run: `faultline check F | head -1` closes
//! stdout after one line, `faultline test … 2>&1 | head -3` both streams. The first write
//! that fails turns that stream off for the rest of the process, quietly for a broken pipe
//! (with one note on stderr for any other error), and the command goes on: a campaign
//! still heals, tears down, checks and writes its whole run folder, `check` still checks
//! every file and writes every report, and both exit with their verdict's code.

use faultline_results::text::visible_lines;
use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_OFF: AtomicBool = AtomicBool::new(false);
static STDERR_OFF: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stdout as it is (no newline added); nothing once stdout is closed.
pub fn print(text: &str) {
    if STDOUT_OFF.load(Ordering::Relaxed) {
        return;
    }
    let text = visible_lines(text);
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    if let Err(e) = lock.write_all(text.as_bytes()).and_then(|()| lock.flush()) {
        STDOUT_OFF.store(true, Ordering::Relaxed);
        if e.kind() != ErrorKind::BrokenPipe {
            eprint(&format!(
                "warning: cannot write to stdout ({e}); nothing more is printed there\n"
            ));
        }
    }
}

/// Writes `text` to stderr as it is; nothing once stderr is closed.
pub fn eprint(text: &str) {
    if STDERR_OFF.load(Ordering::Relaxed) {
        return;
    }
    let text = visible_lines(text);
    let stderr = std::io::stderr();
    let mut lock = stderr.lock();
    if lock
        .write_all(text.as_bytes())
        .and_then(|()| lock.flush())
        .is_err()
    {
        STDERR_OFF.store(true, Ordering::Relaxed);
    }
}

/// Whether stdout was found closed (a reader such as `head` went away).
pub fn stdout_closed() -> bool {
    STDOUT_OFF.load(Ordering::Relaxed)
}

/// `println!` through [`print`]: never panics on a closed stdout.
#[macro_export]
macro_rules! outln {
    () => { $crate::out::print("\n") };
    ($($arg:tt)*) => {{
        let mut line = format!($($arg)*);
        line.push('\n');
        $crate::out::print(&line);
    }};
}

/// `eprintln!` through [`eprint`]: never panics on a closed stderr.
#[macro_export]
macro_rules! errln {
    () => { $crate::out::eprint("\n") };
    ($($arg:tt)*) => {{
        let mut line = format!($($arg)*);
        line.push('\n');
        $crate::out::eprint(&line);
    }};
}
