//! Durable files shared by both modes: an append-only log of framed records and files
//! replaced atomically.
//!
//! A record is `len u32 LE | body crc32 u32 LE | header crc32 u32 LE | kind u8 | payload`:
//! `len` counts the kind byte and the payload, the body crc covers both, the header crc
//! covers the first 8 bytes (so a damaged length is caught before it is trusted).
//!
//! Reading a log ([`unframe`]) accepts one kind of damage only: what a crash in the middle
//! of the last append leaves, a last record cut short, whose bytes run to the end of the
//! file (fewer bytes than a header, or a sound header announcing more bytes than the file
//! holds). Appends are sequential and a record is acknowledged only after the fsync that
//! follows it, so such a record was never relied on, and [`AppendLog::open`] cuts it off.
//! Anything else is corruption, and reading fails with the byte offset of the first bad
//! record: a header or body checksum mismatch (even in the last record: a complete record
//! is not what a cut-short write leaves, and dropping it could drop a fsynced vote), an
//! empty record. A file replaced atomically ([`read_records`]) must be intact to its end.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Size of the in-process write buffer of a log.
const BUFFER_BYTES: usize = 1024 * 1024;

/// Size of a record's header.
pub const HEADER_BYTES: usize = 12;

/// Errors reading or writing a durable file.
#[derive(Debug, thiserror::Error)]
pub enum DurableError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is damaged at `offset`.
    #[error("{path}: corrupt at byte offset {offset}: {detail} (not what a crash leaves: refusing to use this file)")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the first bad record starts.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
}

/// Damage found by [`unframe`]: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset of the bad record.
    pub offset: usize,
    /// What is wrong.
    pub detail: String,
}

impl Damage {
    /// The error for file `path`.
    pub fn at(self, path: &Path) -> DurableError {
        DurableError::Corrupt {
            path: path.to_owned(),
            offset: self.offset as u64,
            detail: self.detail,
        }
    }
}

/// One record read back: where it starts, its kind and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<P> {
    /// Byte offset of its header.
    pub offset: usize,
    /// Its kind.
    pub kind: u8,
    /// Its payload.
    pub payload: P,
}

/// Records read back from a file.
pub type Records = Vec<Record<Vec<u8>>>;

/// Records borrowed from a buffer, and the length of its intact prefix.
pub type Unframed<'a> = (Vec<Record<&'a [u8]>>, usize);

/// Frames one record.
pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 1 + HEADER_BYTES);
    let len = u32::try_from(payload.len() + 1).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(payload);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    let header_crc = crc32fast::hash(&out[..8]);
    out.extend_from_slice(&header_crc.to_le_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
    out
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

/// Splits `buf` into records; returns them and the length of the intact prefix, which is
/// shorter than `buf` only when the last record is cut short. Any other damage is an
/// error (see the module docs).
pub fn unframe(buf: &[u8]) -> Result<Unframed<'_>, Damage> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let rest = buf.len() - pos;
        if rest < HEADER_BYTES {
            // A header cut short: the end of the file.
            break;
        }
        let len = u32_at(buf, pos) as usize;
        let body_crc = u32_at(buf, pos + 4);
        if crc32fast::hash(&buf[pos..pos + 8]) != u32_at(buf, pos + 8) {
            return Err(Damage {
                offset: pos,
                detail: format!(
                    "record header checksum mismatch ({} bytes follow)",
                    rest - HEADER_BYTES
                ),
            });
        }
        if len == 0 {
            return Err(Damage {
                offset: pos,
                detail: "empty record".to_owned(),
            });
        }
        let start = pos + HEADER_BYTES;
        if buf.len() - start < len {
            // A sound header whose record runs past the end of the file: cut short.
            break;
        }
        let body = &buf[start..start + len];
        if crc32fast::hash(body) != body_crc {
            let after = buf.len() - start - len;
            return Err(Damage {
                offset: pos,
                detail: format!(
                    "checksum mismatch in a record of {len} bytes ({after} bytes follow it)"
                ),
            });
        }
        out.push(Record {
            offset: pos,
            kind: body[0],
            payload: &body[1..],
        });
        pos = start + len;
    }
    Ok((out, pos))
}

fn owned(recs: Vec<Record<&[u8]>>) -> Records {
    recs.into_iter()
        .map(|r| Record {
            offset: r.offset,
            kind: r.kind,
            payload: r.payload.to_vec(),
        })
        .collect()
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

/// Reads every record of `path`, a file replaced whole (none if it does not exist): it
/// must be intact to its end.
pub fn read_records(path: &Path) -> Result<Records, DurableError> {
    let io = |source| DurableError::Io {
        path: path.to_owned(),
        source,
    };
    if !path.exists() {
        return Ok(Vec::new());
    }
    let buf = fs::read(path).map_err(io)?;
    let (recs, valid) = unframe(&buf).map_err(|d| d.at(path))?;
    if valid < buf.len() {
        return Err(Damage {
            offset: valid,
            detail: format!(
                "record cut short ({} bytes; the file is written whole, then renamed)",
                buf.len() - valid
            ),
        }
        .at(path));
    }
    Ok(owned(recs))
}

/// An append-only file of framed records with an in-process write buffer.
pub struct AppendLog {
    dir: PathBuf,
    name: String,
    file: BufWriter<File>,
    dirty: bool,
}

impl AppendLog {
    /// Opens (or creates) `dir/name`, returning the log and the records it holds. A last
    /// record cut short is cut off; any other damage is an error naming the offset.
    pub fn open(dir: &Path, name: &str) -> Result<(Self, Records), DurableError> {
        let path = dir.join(name);
        let io = |source| DurableError::Io {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(dir).map_err(io)?;
        let buf = if path.exists() {
            fs::read(&path).map_err(io)?
        } else {
            Vec::new()
        };
        let (recs, valid) = unframe(&buf).map_err(|d| d.at(&path))?;
        let records = owned(recs);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        if valid < buf.len() {
            tracing::warn!(
                file = %path.display(),
                offset = valid,
                cut = buf.len() - valid,
                "cutting a last record cut short (a crash in the middle of an append)"
            );
            file.set_len(valid as u64).map_err(io)?;
            file.sync_all().map_err(io)?;
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

    fn kinds(recs: &[Record<&[u8]>]) -> Vec<(u8, Vec<u8>)> {
        recs.iter().map(|r| (r.kind, r.payload.to_vec())).collect()
    }

    fn three() -> Vec<u8> {
        let mut buf = frame(1, b"hello");
        buf.extend(frame(2, b""));
        buf.extend(frame(7, &[0u8; 300]));
        buf
    }

    #[test]
    fn records_round_trip_and_only_a_last_record_cut_short_is_dropped() {
        let buf = three();
        let whole = buf.len();
        let (recs, valid) = unframe(&buf).unwrap_or_else(|d| panic!("{d:?}"));
        assert_eq!(valid, whole);
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].payload, b"hello");
        assert_eq!((recs[1].kind, recs[1].offset), (2, 18));
        assert_eq!(recs[2].payload.len(), 300);
        let two = frame(1, b"hello").len() + frame(2, b"").len();
        // Cut anywhere inside the last record (header or body): the first two remain.
        for cut in [1, 10, 300, whole - two - 1] {
            let (recs, valid) = unframe(&buf[..whole - cut]).unwrap_or_else(|d| panic!("{d:?}"));
            assert_eq!((recs.len(), valid), (2, two), "cut {cut}");
        }
        assert_eq!(unframe(&[]).map(|(r, v)| (r.len(), v)), Ok((0, 0)));
        assert_eq!(unframe(&buf[..5]).map(|(r, v)| (r.len(), v)), Ok((0, 0)));
    }

    #[test]
    fn any_other_damage_is_an_error_at_the_bad_record() {
        let buf = three();
        let second = frame(1, b"hello").len();
        let third = second + frame(2, b"").len();
        // A flipped byte anywhere, in any record, the last one included.
        for at in 0..buf.len() {
            let mut bad = buf.clone();
            bad[at] ^= 0x01;
            let got = unframe(&bad);
            let record = if at < second {
                0
            } else if at < third {
                second
            } else {
                third
            };
            match got {
                Err(d) => assert_eq!(d.offset, record, "byte {at}: {d:?}"),
                // A length made longer in the last header runs past the end: cut short.
                Ok((recs, valid)) => {
                    panic!("byte {at} flipped: {} records, {valid} bytes", recs.len())
                }
            }
        }
        // A damaged length in the middle, even one pointing past the end, is caught.
        let mut bad = buf.clone();
        bad[second..second + 4].copy_from_slice(&100_000u32.to_le_bytes());
        assert_eq!(unframe(&bad).map_err(|d| d.offset), Err(second));
        // An empty record with a sound header.
        let mut empty = vec![0u8; 8];
        let crc = crc32fast::hash(&empty);
        empty.extend_from_slice(&crc.to_le_bytes());
        assert!(unframe(&empty).is_err());
        assert_eq!(
            kinds(&unframe(&frame(4, b"x")).map(|r| r.0).unwrap_or_default()),
            vec![(4, b"x".to_vec())]
        );
    }

    #[test]
    fn a_file_replaced_whole_must_be_intact() {
        let dir =
            std::env::temp_dir().join(format!("faultline-durable-whole-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        assert!(fs::create_dir_all(&dir).is_ok());
        assert!(replace_file(&dir, "s.bin", &[(3, b"state")]).is_ok());
        let path = dir.join("s.bin");
        let read = |p: &Path| read_records(p).map(|r| r.len()).map_err(|e| e.to_string());
        assert_eq!(read(&path), Ok(1));
        let good = fs::read(&path).unwrap_or_default();
        assert!(fs::write(&path, &good[..good.len() - 1]).is_ok());
        let e = read(&path).err().unwrap_or_default();
        assert!(e.contains("s.bin") && e.contains("offset 0"), "{e}");
        let mut longer = good.clone();
        longer.push(0);
        assert!(fs::write(&path, &longer).is_ok());
        let e = read(&path).err().unwrap_or_default();
        assert!(e.contains(&format!("offset {}", good.len())), "{e}");
        let _ = fs::remove_dir_all(&dir);
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
        let pairs = |recs: &Records| -> Vec<(u8, Vec<u8>)> {
            recs.iter().map(|r| (r.kind, r.payload.clone())).collect()
        };
        assert_eq!(
            pairs(&recs),
            vec![(1, b"one".to_vec()), (2, b"two".to_vec())]
        );
        assert!(log.rewrite(&[(9, b"only")]).is_ok());
        assert!(log.append(4, b"after").is_ok() && log.sync().is_ok());
        let Ok((_, recs)) = AppendLog::open(&dir, "x.log") else {
            panic!("reopen failed")
        };
        assert_eq!(
            pairs(&recs),
            vec![(9, b"only".to_vec()), (4, b"after".to_vec())]
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
