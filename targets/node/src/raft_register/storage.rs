//! Durable storage for the Raft log behind raft-rs's [`Storage`] trait.
//!
//! Layout of a node's data directory:
//! - `wal.log`: an append-only file of framed records (see [`crate::durable`]), kind 1 = a
//!   log entry, kind 2 = the hard state (term, vote, commit). Replaying it in order rebuilds
//!   the log: an entry at an index that already exists replaces that entry and everything
//!   after it. A last record cut short (a crash in the middle of an append, before the
//!   fsync that would have made anything depend on it) is cut off; any other damage, or a
//!   record that does not decode or does not fit the log, makes opening fail with the byte
//!   offset: a node that lost a fsynced vote or entry must not come up.
//! - `snapshot.bin`: the latest snapshot (one framed record, kind 3), written to a temporary
//!   file, fsynced and renamed into place: it must be intact to its end.
//!
//! Everything written during one Ready is made durable by a single [`DiskStorage::persist`]
//! (one flush and one fsync), before any acknowledgement depends on it. After a snapshot the
//! log is compacted: `wal.log` is rewritten holding only the hard state and the entries
//! after the snapshot.

use std::path::{Path, PathBuf};

use protobuf::Message as PbMessage;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};

use crate::durable::{read_records, replace_file, AppendLog, DurableError};

const KIND_ENTRY: u8 = 1;
const KIND_HARD_STATE: u8 = 2;
const KIND_SNAPSHOT: u8 = 3;
const WAL: &str = "wal.log";
const SNAPSHOT: &str = "snapshot.bin";

/// Errors from the node's own storage files.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A record could not be decoded.
    #[error("{path}: corrupt record: {detail}")]
    Corrupt {
        /// The file involved.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// A file is damaged (checksums, framing).
    #[error(transparent)]
    Durable(#[from] DurableError),
}

fn io_err(path: PathBuf) -> impl FnOnce(std::io::Error) -> DiskError {
    move |source| DiskError::Io { path, source }
}

fn encode(msg: &impl PbMessage, path: &Path) -> Result<Vec<u8>, DiskError> {
    msg.write_to_bytes().map_err(|e| DiskError::Corrupt {
        path: path.to_owned(),
        detail: e.to_string(),
    })
}

/// The Raft log, hard state and latest snapshot of one node, kept in memory and on disk.
pub struct DiskStorage {
    dir: PathBuf,
    hard_state: HardState,
    conf_state: ConfState,
    snapshot: Snapshot,
    entries: Vec<Entry>,
    wal: AppendLog,
    sync: bool,
}

impl DiskStorage {
    /// Opens (or creates) the storage in `dir`. A fresh node starts with `voters` as its
    /// configuration. With `sync == false` (the `no-fsync` fault) records are neither
    /// flushed nor fsynced by [`persist`](Self::persist): they stay in the process buffer
    /// until it fills.
    pub fn open(dir: &Path, voters: &[u64], sync: bool) -> Result<Self, DiskError> {
        let snap_path = dir.join(SNAPSHOT);
        let mut snapshot = Snapshot::default();
        let snap_records = read_records(&snap_path)?;
        if snap_path.exists() {
            let corrupt = |offset: usize, detail: String| DiskError::Corrupt {
                path: snap_path.clone(),
                detail: format!("record at byte offset {offset}: {detail}"),
            };
            match snap_records.as_slice() {
                [r] if r.kind == KIND_SNAPSHOT => {
                    snapshot = Snapshot::parse_from_bytes(&r.payload)
                        .map_err(|e| corrupt(r.offset, e.to_string()))?;
                }
                _ => {
                    return Err(corrupt(
                        0,
                        format!("{} records, not one snapshot record", snap_records.len()),
                    ))
                }
            }
        }
        let mut conf_state = snapshot.get_metadata().get_conf_state().clone();
        if conf_state == ConfState::default() {
            conf_state.set_voters(voters.to_vec());
        }
        let snap_index = snapshot.get_metadata().index;
        let mut hard_state = HardState {
            commit: snap_index,
            term: snapshot.get_metadata().term,
            ..Default::default()
        };
        let mut entries: Vec<Entry> = Vec::new();

        let wal_path = dir.join(WAL);
        let (wal, records) = AppendLog::open(dir, WAL)?;
        for record in records {
            let (kind, payload) = (record.kind, record.payload);
            let corrupt = |detail: String| DiskError::Corrupt {
                path: wal_path.clone(),
                detail: format!("record at byte offset {}: {detail}", record.offset),
            };
            match kind {
                KIND_ENTRY => {
                    let e =
                        Entry::parse_from_bytes(&payload).map_err(|e| corrupt(e.to_string()))?;
                    if e.index <= snap_index {
                        continue;
                    }
                    let first = entries.first().map_or(snap_index + 1, |f| f.index);
                    if e.index < first {
                        return Err(corrupt(format!(
                            "entry {} precedes the log start {first}",
                            e.index
                        )));
                    }
                    let keep = (e.index - first) as usize;
                    if keep > entries.len() {
                        return Err(corrupt(format!("gap before entry {}", e.index)));
                    }
                    entries.truncate(keep);
                    entries.push(e);
                }
                KIND_HARD_STATE => {
                    hard_state = HardState::parse_from_bytes(&payload)
                        .map_err(|e| corrupt(e.to_string()))?;
                }
                other => return Err(corrupt(format!("unknown record kind {other}"))),
            }
        }
        hard_state.commit = hard_state.commit.max(snap_index);
        Ok(Self {
            dir: dir.to_owned(),
            hard_state,
            conf_state,
            snapshot,
            entries,
            wal,
            sync,
        })
    }

    fn snap_index(&self) -> u64 {
        self.snapshot.get_metadata().index
    }

    fn first(&self) -> u64 {
        self.snap_index() + 1
    }

    fn last(&self) -> u64 {
        self.entries.last().map_or(self.snap_index(), |e| e.index)
    }

    /// Appends entries to the log (replacing any conflicting suffix); not yet durable.
    pub fn append(&mut self, ents: &[Entry]) -> Result<(), DiskError> {
        let Some(head) = ents.first() else {
            return Ok(());
        };
        let first = self.first();
        let path = self.wal.path();
        if head.index < first || head.index > self.last() + 1 {
            return Err(DiskError::Corrupt {
                path,
                detail: format!(
                    "append at {} outside [{first}, {}]",
                    head.index,
                    self.last() + 1
                ),
            });
        }
        self.entries.truncate((head.index - first) as usize);
        for e in ents {
            let bytes = encode(e, &path)?;
            self.wal
                .append(KIND_ENTRY, &bytes)
                .map_err(io_err(path.clone()))?;
            self.entries.push(e.clone());
        }
        Ok(())
    }

    /// Records a new hard state; not yet durable.
    pub fn set_hard_state(&mut self, hs: &HardState) -> Result<(), DiskError> {
        let path = self.wal.path();
        let bytes = encode(hs, &path)?;
        self.wal
            .append(KIND_HARD_STATE, &bytes)
            .map_err(io_err(path))?;
        self.hard_state = hs.clone();
        Ok(())
    }

    /// Sets the commit index of the hard state (from a light ready); not yet durable.
    pub fn set_commit(&mut self, commit: u64) -> Result<(), DiskError> {
        let mut hs = self.hard_state.clone();
        hs.commit = commit;
        self.set_hard_state(&hs)
    }

    /// Makes everything written since the last call durable: one flush and one fsync
    /// (nothing at all under the `no-fsync` fault).
    pub fn persist(&mut self) -> Result<(), DiskError> {
        if self.sync {
            self.wal.sync().map_err(io_err(self.wal.path()))?;
        }
        Ok(())
    }

    /// The latest snapshot held (index 0 if none).
    pub fn snapshot_ref(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Installs a snapshot received from the leader: the whole log is replaced by it.
    pub fn apply_snapshot(&mut self, snap: &Snapshot) -> Result<(), DiskError> {
        let meta = snap.get_metadata();
        self.hard_state.term = self.hard_state.term.max(meta.term);
        self.hard_state.commit = meta.index;
        self.conf_state = meta.get_conf_state().clone();
        self.entries.clear();
        self.write_snapshot(snap)?;
        self.rewrite_wal()
    }

    /// Stores a snapshot of the state machine taken at `index` and drops the log up to it.
    pub fn compact_to_snapshot(&mut self, index: u64, data: Vec<u8>) -> Result<(), DiskError> {
        if index <= self.snap_index() || index > self.last() {
            return Ok(());
        }
        let term = self.term(index).unwrap_or(0);
        let mut snap = Snapshot::default();
        snap.set_data(data.into());
        let meta = snap.mut_metadata();
        meta.index = index;
        meta.term = term;
        meta.set_conf_state(self.conf_state.clone());
        let keep_from = (index + 1 - self.first()) as usize;
        self.write_snapshot(&snap)?;
        self.entries.drain(..keep_from.min(self.entries.len()));
        self.rewrite_wal()
    }

    fn write_snapshot(&mut self, snap: &Snapshot) -> Result<(), DiskError> {
        let path = self.dir.join(SNAPSHOT);
        let bytes = encode(snap, &path)?;
        replace_file(&self.dir, SNAPSHOT, &[(KIND_SNAPSHOT, &bytes)]).map_err(io_err(path))?;
        self.snapshot = snap.clone();
        Ok(())
    }

    /// Rewrites `wal.log` with the hard state and the entries held, atomically.
    fn rewrite_wal(&mut self) -> Result<(), DiskError> {
        let path = self.wal.path();
        let mut encoded = vec![(KIND_HARD_STATE, encode(&self.hard_state, &path)?)];
        for e in &self.entries {
            encoded.push((KIND_ENTRY, encode(e, &path)?));
        }
        let records: Vec<(u8, &[u8])> = encoded.iter().map(|(k, b)| (*k, b.as_slice())).collect();
        self.wal.rewrite(&records).map_err(io_err(path))
    }
}

impl Storage for DiskStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last() + 1 || low > high {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let lo = (low - self.first()) as usize;
        let hi = (high - self.first()) as usize;
        let mut ents = self.entries[lo..hi].to_vec();
        raft::util::limit_size(&mut ents, max_size.into());
        Ok(ents)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx == self.snap_index() {
            return Ok(self.snapshot.get_metadata().term);
        }
        if idx < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > self.last() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(self.entries[(idx - self.first()) as usize].term)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        if self.snap_index() < request_index {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(self.snapshot.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, OpenOptions};

    fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
        let mut e = Entry {
            index,
            term,
            ..Default::default()
        };
        e.set_data(data.to_vec().into());
        e
    }

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "faultline-raft-storage-{tag}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn open(dir: &Path) -> DiskStorage {
        match DiskStorage::open(dir, &[1, 2, 3], true) {
            Ok(s) => s,
            Err(e) => panic!("open {}: {e}", dir.display()),
        }
    }

    fn datas(s: &DiskStorage, low: u64, high: u64) -> Vec<Vec<u8>> {
        let ents = s
            .entries(low, high, None, GetEntriesContext::empty(false))
            .unwrap_or_default();
        ents.iter().map(|e| e.get_data().to_vec()).collect()
    }

    #[test]
    fn log_and_hard_state_survive_reopening_and_conflicts_replace_the_suffix() {
        let dir = scratch("reopen");
        let mut s = open(&dir);
        assert_eq!(
            s.initial_state()
                .map(|r| r.conf_state.voters)
                .unwrap_or_default(),
            vec![1, 2, 3]
        );
        assert!(s
            .append(&[entry(1, 1, b"a"), entry(2, 1, b"b"), entry(3, 1, b"c")])
            .is_ok());
        let hs = HardState {
            term: 2,
            vote: 3,
            commit: 1,
            ..Default::default()
        };
        assert!(s.set_hard_state(&hs).is_ok());
        // A new leader overwrites index 2 onwards.
        assert!(s.append(&[entry(2, 2, b"B")]).is_ok());
        assert!(s.persist().is_ok());
        drop(s);
        let s = open(&dir);
        assert_eq!(
            (s.first_index().ok(), s.last_index().ok()),
            (Some(1), Some(2))
        );
        assert_eq!(datas(&s, 1, 3), vec![b"a".to_vec(), b"B".to_vec()]);
        assert_eq!(s.term(2).ok(), Some(2));
        assert_eq!(s.initial_state().map(|r| r.hard_state).ok(), Some(hs));
        assert!(s.term(3).is_err());
        assert!(s
            .entries(1, 4, None, GetEntriesContext::empty(false))
            .is_err());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_torn_tail_is_cut_and_appending_goes_on() {
        let dir = scratch("torn");
        let mut s = open(&dir);
        assert!(s.append(&[entry(1, 1, b"a"), entry(2, 1, b"b")]).is_ok());
        assert!(s.persist().is_ok());
        drop(s);
        let len = fs::metadata(dir.join(WAL)).map(|m| m.len()).unwrap_or(0);
        let f = OpenOptions::new().write(true).open(dir.join(WAL));
        assert!(f.and_then(|f| f.set_len(len - 3)).is_ok());
        let mut s = open(&dir);
        assert_eq!(s.last_index().ok(), Some(1));
        assert!(s.append(&[entry(2, 1, b"b2")]).is_ok());
        assert!(s.persist().is_ok());
        drop(s);
        let s = open(&dir);
        assert_eq!(datas(&s, 1, 3), vec![b"a".to_vec(), b"b2".to_vec()]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn damage_before_the_last_record_is_refused_and_a_vote_is_never_dropped() {
        let dir = scratch("damage");
        let mut s = open(&dir);
        assert!(s.append(&[entry(1, 1, b"a"), entry(2, 1, b"b")]).is_ok());
        let voted = HardState {
            term: 2,
            vote: 3,
            commit: 1,
            ..Default::default()
        };
        assert!(s.set_hard_state(&voted).is_ok());
        assert!(s.persist().is_ok());
        let before_vote = fs::metadata(dir.join(WAL)).map(|m| m.len()).unwrap_or(0) as usize;
        assert!(s.append(&[entry(3, 2, b"c")]).is_ok());
        assert!(s.persist().is_ok());
        drop(s);
        let good = fs::read(dir.join(WAL)).unwrap_or_default();
        let reopen = |bytes: &[u8]| {
            assert!(fs::write(dir.join(WAL), bytes).is_ok());
            DiskStorage::open(&dir, &[1, 2, 3], true).map_err(|e| e.to_string())
        };
        // A byte of the vote record flipped, with a record after it: refused.
        let mut bad = good.clone();
        bad[before_vote - 3] ^= 0x10;
        let e = reopen(&bad).err().unwrap_or_default();
        assert!(e.contains("wal.log") && e.contains("offset"), "{e}");
        // The vote record as the last one, complete but damaged: refused too, not dropped.
        let e = reopen(&bad[..before_vote]).err().unwrap_or_default();
        assert!(e.contains("checksum mismatch"), "{e}");
        // The vote record cut short (a crash before its fsync): dropped, the term before it
        // is kept.
        let s = reopen(&good[..before_vote - 2]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.initial_state().map(|r| r.hard_state.vote).ok(), Some(0));
        // Intact: everything is there.
        let s = reopen(&good).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.initial_state().map(|r| r.hard_state).ok(), Some(voted));
        assert_eq!(s.last_index().ok(), Some(3));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn snapshots_compact_the_log_and_are_reloaded() {
        let dir = scratch("snap");
        let mut s = open(&dir);
        let ents: Vec<Entry> = (1..=10).map(|i| entry(i, 1 + i / 5, &[i as u8])).collect();
        assert!(s.append(&ents).is_ok());
        assert!(s.persist().is_ok());
        assert!(s.compact_to_snapshot(7, b"state@7".to_vec()).is_ok());
        assert_eq!(
            (s.first_index().ok(), s.last_index().ok()),
            (Some(8), Some(10))
        );
        assert_eq!(s.term(7).ok(), Some(2));
        assert!(matches!(
            s.term(6),
            Err(raft::Error::Store(StorageError::Compacted))
        ));
        assert!(s
            .entries(5, 9, None, GetEntriesContext::empty(false))
            .is_err());
        drop(s);
        let s = open(&dir);
        assert_eq!(
            (s.first_index().ok(), s.last_index().ok()),
            (Some(8), Some(10))
        );
        let snap = s.snapshot(0, 2).unwrap_or_default();
        assert_eq!(
            (snap.get_metadata().index, snap.get_data()),
            (7, &b"state@7"[..])
        );
        assert_eq!(snap.get_metadata().get_conf_state().voters, vec![1, 2, 3]);
        assert_eq!(datas(&s, 8, 11), vec![vec![8], vec![9], vec![10]]);
        assert!(
            fs::metadata(dir.join(WAL))
                .map(|m| m.len())
                .unwrap_or(u64::MAX)
                < 200
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_snapshot_from_the_leader_replaces_the_log() {
        let dir = scratch("install");
        let mut s = open(&dir);
        assert!(s.append(&[entry(1, 1, b"a"), entry(2, 1, b"b")]).is_ok());
        let mut snap = Snapshot::default();
        snap.set_data(b"leader".to_vec().into());
        snap.mut_metadata().index = 50;
        snap.mut_metadata().term = 4;
        snap.mut_metadata().mut_conf_state().voters = vec![1, 2, 3];
        assert!(s.apply_snapshot(&snap).is_ok());
        assert_eq!(
            (s.first_index().ok(), s.last_index().ok()),
            (Some(51), Some(50))
        );
        drop(s);
        let s = open(&dir);
        let rs = s.initial_state().unwrap_or_default();
        assert_eq!((rs.hard_state.commit, rs.hard_state.term), (50, 4));
        assert_eq!(s.term(50).ok(), Some(4));
        let _ = fs::remove_dir_all(&dir);
    }
}
