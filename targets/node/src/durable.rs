//! Durable files shared by both modes: an append-only log of framed records and files
//! replaced atomically.
//!
//! A record is `len u32 LE | crc32 u32 LE | kind u8 | payload`, where `len` counts the kind
//! byte and the payload and the crc covers both. Reading stops at the first record that is
//! incomplete or fails its checksum: that is a torn write from a crash, everything before it
//! is intact, and [`AppendLog::open`] cuts the tail off so appending resumes cleanly.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Size of the in-process write buffer of a log.
const BUFFER_BYTES: usize = 1024 * 1024;

/// Frames one record.
pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(payload.len() + 1);
    body.push(kind);
    body.extend_from_slice(payload);
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Splits `buf` into `(kind, payload)` records; returns them and the length of the valid
/// prefix (shorter than `buf` when the tail is torn or corrupt).
pub fn unframe(buf: &[u8]) -> (Vec<(u8, &[u8])>, usize) {
    let mut out = Vec::new();
    let mut pos = 0;
    while buf.len() - pos >= 8 {
        let len = u32::from_le_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]) as usize;
        let crc = u32::from_le_bytes([buf[pos + 4], buf[pos + 5], buf[pos + 6], buf[pos + 7]]);
        let start = pos + 8;
        if len == 0 || buf.len() - start < len {
            break;
        }
        let body = &buf[start..start + len];
        if crc32fast::hash(body) != crc {
            break;
        }
        out.push((body[0], &body[1..]));
        pos = start + len;
    }
    (out, pos)
}

/// Fsyncs a directory so that a rename inside it is durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all())
}

/// Replaces `dir/name` with the given records: written to a temporary file, fsynced,
/// renamed into place, and the directory fsynced.
pub fn replace_file(dir: &Path, name: &str, records: &[(u8, &[u8])]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut out = BufWriter::with_capacity(BUFFER_BYTES, File::create(&tmp)?);
    for (kind, payload) in records {
        out.write_all(&frame(*kind, payload))?;
    }
    out.flush()?;
    out.get_ref().sync_all()?;
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

/// Reads every intact record of `path` (none if the file does not exist).
pub fn read_records(path: &Path) -> std::io::Result<Records> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let buf = fs::read(path)?;
    Ok(unframe(&buf)
        .0
        .into_iter()
        .map(|(k, p)| (k, p.to_vec()))
        .collect())
}

/// Records read back from a file: `(kind, payload)`.
pub type Records = Vec<(u8, Vec<u8>)>;

/// An append-only file of framed records with an in-process write buffer.
pub struct AppendLog {
    dir: PathBuf,
    name: String,
    file: BufWriter<File>,
    dirty: bool,
}

impl AppendLog {
    /// Opens (or creates) `dir/name`, returning the log and the intact records it holds; a
    /// torn tail is cut off.
    pub fn open(dir: &Path, name: &str) -> std::io::Result<(Self, Records)> {
        fs::create_dir_all(dir)?;
        let path = dir.join(name);
        let buf = if path.exists() {
            fs::read(&path)?
        } else {
            Vec::new()
        };
        let (recs, valid) = unframe(&buf);
        let records = recs.into_iter().map(|(k, p)| (k, p.to_vec())).collect();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        if valid < buf.len() {
            tracing::warn!(file = %path.display(), cut = buf.len() - valid, "cutting a torn tail");
            file.set_len(valid as u64)?;
            file.sync_all()?;
        }
        let log = Self {
            dir: dir.to_owned(),
            name: name.to_owned(),
            file: BufWriter::with_capacity(BUFFER_BYTES, file),
            dirty: false,
        };
        Ok((log, records))
    }

    /// The file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// Buffers one record; it reaches the file when the buffer fills or on [`sync`](Self::sync).
    pub fn append(&mut self, kind: u8, payload: &[u8]) -> std::io::Result<()> {
        self.file.write_all(&frame(kind, payload))?;
        self.dirty = true;
        Ok(())
    }

    /// Makes every record appended so far durable: one flush and one fsync.
    pub fn sync(&mut self) -> std::io::Result<()> {
        if self.dirty {
            self.file.flush()?;
            self.file.get_ref().sync_data()?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Replaces the whole file with `records`, atomically and durably.
    pub fn rewrite(&mut self, records: &[(u8, &[u8])]) -> std::io::Result<()> {
        self.file.flush()?;
        replace_file(&self.dir, &self.name, records)?;
        let file = OpenOptions::new().append(true).open(self.path())?;
        self.file = BufWriter::with_capacity(BUFFER_BYTES, file);
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_a_torn_tail_is_cut() {
        let mut buf = frame(1, b"hello");
        buf.extend(frame(2, b""));
        buf.extend(frame(7, &[0u8; 300]));
        let whole = buf.len();
        let (recs, valid) = unframe(&buf);
        assert_eq!(valid, whole);
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0], (1, &b"hello"[..]));
        assert_eq!(recs[1], (2, &b""[..]));
        assert_eq!(recs[2].1.len(), 300);
        let (recs, valid) = unframe(&buf[..whole - 10]);
        assert_eq!(
            (recs.len(), valid),
            (2, frame(1, b"hello").len() + frame(2, b"").len())
        );
        let mut bad = buf.clone();
        bad[10] ^= 0xff;
        assert_eq!(unframe(&bad), (Vec::new(), 0));
    }

    #[test]
    fn the_log_appends_syncs_rewrites_and_recovers() {
        let dir = std::env::temp_dir().join(format!("faultline-durable-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let opened = AppendLog::open(&dir, "x.log");
        let Ok((mut log, recs)) = opened else {
            panic!("open failed")
        };
        assert!(recs.is_empty());
        assert!(
            log.append(1, b"one").is_ok() && log.append(2, b"two").is_ok() && log.sync().is_ok()
        );
        // Unsynced records stay in the process buffer.
        assert!(log.append(3, b"lost").is_ok());
        // A kill: the buffer is discarded, never flushed.
        let (_file, _unflushed) = log.file.into_parts();
        let Ok((mut log, recs)) = AppendLog::open(&dir, "x.log") else {
            panic!("reopen failed")
        };
        assert_eq!(recs, vec![(1, b"one".to_vec()), (2, b"two".to_vec())]);
        assert!(log.rewrite(&[(9, b"only")]).is_ok());
        assert!(log.append(4, b"after").is_ok() && log.sync().is_ok());
        let Ok((_, recs)) = AppendLog::open(&dir, "x.log") else {
            panic!("reopen failed")
        };
        assert_eq!(recs, vec![(9, b"only".to_vec()), (4, b"after".to_vec())]);
        let _ = fs::remove_dir_all(&dir);
    }
}
