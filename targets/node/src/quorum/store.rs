//! One quorum-kv replica's durable store: a map from key to the newest [`Versioned`] value
//! seen, last writer wins by `(timestamp, node id)`.
//!
//! Writes go to one writer thread that batches whatever is queued, appends the records to
//! `kv.log` (framed, see [`crate::durable`]), fsyncs once for the batch, and only then merges
//! them into the map and answers: a value is never visible or acknowledged before it is on
//! disk. When the log holds many superseded records it is rewritten with the live ones.
//! Opening the store cuts a last record cut short (a crash mid-append) and refuses any
//! other damage, or a record that does not decode, naming the byte offset.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::durable::AppendLog;

const LOG: &str = "kv.log";
const KIND_PUT: u8 = 1;
const BATCH: usize = 1024;
/// Rewrite the log once it holds this many records and four times the live keys.
const COMPACT_RECORDS: usize = 100_000;

/// A value with its last-writer-wins tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versioned {
    /// The value (`null` with `ts == 0` means never written).
    pub value: Value,
    /// Wall-clock nanoseconds at the coordinator that wrote it.
    pub ts: u64,
    /// Id of that coordinator (breaks timestamp ties).
    pub node: u64,
}

impl Versioned {
    /// The never-written value.
    pub fn absent() -> Self {
        Self {
            value: Value::Null,
            ts: 0,
            node: 0,
        }
    }

    /// The order of last writer wins.
    pub fn tag(&self) -> (u64, u64) {
        (self.ts, self.node)
    }
}

/// One `kv.log` record: `{"key","value","ts","node"}`. The fields are spelled out rather
/// than `#[serde(flatten)]`ed from [`Versioned`]: with serde_json's `arbitrary_precision`,
/// flattening buffers numbers in a form that does not always deserialize back (it fails
/// from a `Value`), and a record that does not decode stops the node.
#[derive(Serialize, Deserialize)]
struct Record {
    key: String,
    value: Value,
    ts: u64,
    node: u64,
}

impl Record {
    fn new(key: String, v: Versioned) -> Self {
        Self {
            key,
            value: v.value,
            ts: v.ts,
            node: v.node,
        }
    }

    fn versioned(self) -> (String, Versioned) {
        let v = Versioned {
            value: self.value,
            ts: self.ts,
            node: self.node,
        };
        (self.key, v)
    }
}

/// Errors of the replica store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The writer thread is gone (after a disk error).
    #[error("the store's writer has stopped")]
    Stopped,
    /// The log is damaged (checksums, framing).
    #[error(transparent)]
    Durable(#[from] crate::durable::DurableError),
    /// A record with sound checksums does not decode.
    #[error("{path}: corrupt at byte offset {offset}: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the record starts.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
}

struct Put {
    key: String,
    v: Versioned,
    reply: oneshot::Sender<Result<bool, StoreError>>,
}

type Map = Arc<RwLock<HashMap<String, Versioned>>>;

/// A handle on the replica store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    map: Map,
    tx: Sender<Put>,
}

fn merge(map: &mut HashMap<String, Versioned>, key: String, v: Versioned) -> bool {
    match map.get(&key) {
        Some(old) if old.tag() >= v.tag() => false,
        _ => {
            map.insert(key, v);
            true
        }
    }
}

impl Store {
    /// Opens the store in `dir`, replaying its log, and starts the writer thread.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(LOG);
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        let (log, recs) = AppendLog::open(dir, LOG)?;
        let mut map = HashMap::new();
        let mut records = 0;
        for rec in recs {
            let corrupt = |detail: String| StoreError::Corrupt {
                path: path.clone(),
                offset: rec.offset as u64,
                detail,
            };
            if rec.kind != KIND_PUT {
                return Err(corrupt(format!("unknown record kind {}", rec.kind)));
            }
            let r = serde_json::from_slice::<Record>(&rec.payload)
                .map_err(|e| corrupt(format!("undecodable record: {e}")))?;
            records += 1;
            let (key, v) = r.versioned();
            merge(&mut map, key, v);
        }
        let map: Map = Arc::new(RwLock::new(map));
        let (tx, rx) = std::sync::mpsc::channel();
        let writer = Writer {
            log,
            map: map.clone(),
            records,
        };
        std::thread::Builder::new()
            .name("kv-writer".to_owned())
            .spawn(move || writer.run(rx))
            .map_err(io)?;
        Ok(Self { map, tx })
    }

    /// The newest value held for `key` ([`Versioned::absent`] if none).
    pub fn get(&self, key: &str) -> Versioned {
        self.map
            .read()
            .ok()
            .and_then(|m| m.get(key).cloned())
            .unwrap_or_else(Versioned::absent)
    }

    /// Durably stores `v` for `key` if it is newer than what is held; `Ok(true)` if it was.
    pub async fn put(&self, key: String, v: Versioned) -> Result<bool, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Put { key, v, reply })
            .map_err(|_| StoreError::Stopped)?;
        rx.await.map_err(|_| StoreError::Stopped)?
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.map.read().map(|m| m.len()).unwrap_or(0)
    }
}

struct Writer {
    log: AppendLog,
    map: Map,
    records: usize,
}

impl Writer {
    fn run(mut self, rx: Receiver<Put>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
            if let Err(e) = self.write(&batch) {
                tracing::error!(error = %e, "kv.log write failed; the store stops");
                for p in batch {
                    let _ = p.reply.send(Err(StoreError::Stopped));
                }
                return;
            }
            let mut applied = Vec::with_capacity(batch.len());
            if let Ok(mut map) = self.map.write() {
                for p in batch {
                    let newer = merge(&mut map, p.key, p.v);
                    applied.push((p.reply, newer));
                }
            }
            for (reply, newer) in applied {
                let _ = reply.send(Ok(newer));
            }
            if let Err(e) = self.maybe_compact() {
                tracing::error!(error = %e, "kv.log compaction failed; the store stops");
                return;
            }
        }
    }

    fn io(&self) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = self.log.path();
        move |source| StoreError::Io { path, source }
    }

    /// Appends the batch and fsyncs once.
    fn write(&mut self, batch: &[Put]) -> Result<(), StoreError> {
        for p in batch {
            let rec = Record::new(p.key.clone(), p.v.clone());
            let bytes =
                serde_json::to_vec(&rec).map_err(|e| (self.io())(std::io::Error::other(e)))?;
            self.log.append(KIND_PUT, &bytes).map_err(self.io())?;
        }
        self.log.sync().map_err(self.io())?;
        self.records += batch.len();
        Ok(())
    }

    fn maybe_compact(&mut self) -> Result<(), StoreError> {
        if self.records < COMPACT_RECORDS {
            return Ok(());
        }
        let live = self.map.read().map(|m| m.clone()).unwrap_or_default();
        if self.records < 4 * live.len() {
            return Ok(());
        }
        let mut encoded = Vec::with_capacity(live.len());
        for (key, v) in live {
            let rec = Record::new(key, v);
            encoded
                .push(serde_json::to_vec(&rec).map_err(|e| (self.io())(std::io::Error::other(e)))?);
        }
        let records: Vec<(u8, &[u8])> = encoded.iter().map(|b| (KIND_PUT, b.as_slice())).collect();
        self.log.rewrite(&records).map_err(self.io())?;
        self.records = records.len();
        tracing::info!(keys = self.records, "kv.log compacted");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::fs::{self, OpenOptions};
    use std::io::Write;

    fn v(value: Value, ts: u64, node: u64) -> Versioned {
        Versioned { value, ts, node }
    }

    #[test]
    fn records_with_any_value_decode_back() {
        for text in [
            "18446744073709551617",
            "-99999999999999999999",
            "1e400",
            "123456789012345678901234567890.5",
            r#"{"a":[1.0,-0,2E-5],"b":null}"#,
        ] {
            let value: Value = serde_json::from_str(text).unwrap_or_default();
            let want = v(value, 1_796_417_568_658_817_718, 2);
            let rec = Record::new("k".into(), want.clone());
            let bytes = serde_json::to_vec(&rec).unwrap_or_default();
            let back = serde_json::from_slice::<Record>(&bytes).map_err(|e| e.to_string());
            assert_eq!(back.map(|r| r.versioned().1), Ok(want.clone()), "{text}");
            // Through a Value too, where a flattened record fails on numbers beyond 64
            // bits (the node reads records from bytes; a Value keeps the exact value, not
            // always the text: -0 comes back 0).
            let via: Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let back = serde_json::from_value::<Record>(via).map_err(|e| e.to_string());
            let back = back.map(|r| r.versioned().1.value);
            assert!(
                back.as_ref()
                    .is_ok_and(|b| crate::value::same(b, &want.value)),
                "{text}: {back:?}"
            );
            let parsed: Value = serde_json::from_str(text).unwrap_or_default();
            assert_eq!(want.value.to_string(), parsed.to_string());
        }
    }

    #[tokio::test]
    async fn last_writer_wins_and_survives_reopening() {
        let dir = std::env::temp_dir().join(format!("faultline-kv-store-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let store = Store::open(&dir).map_err(|e| e.to_string());
        let Ok(store) = store else {
            panic!("open: {store:?}", store = store.err())
        };
        assert_eq!(store.get("a"), Versioned::absent());
        assert!(matches!(
            store.put("a".into(), v(json!(1), 10, 1)).await,
            Ok(true)
        ));
        assert!(matches!(
            store.put("a".into(), v(json!(2), 5, 2)).await,
            Ok(false)
        ));
        assert!(matches!(
            store.put("a".into(), v(json!(3), 10, 2)).await,
            Ok(true)
        ));
        assert_eq!(store.get("a"), v(json!(3), 10, 2));
        drop(store);
        // A torn record at the end is cut off on reopening.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.join(LOG))
            .map_err(|e| e.to_string());
        if let Ok(f) = f.as_mut() {
            let _ = f.write_all(&[9, 0, 0, 0, 1, 2]);
        }
        let again = Store::open(&dir).map_err(|e| e.to_string());
        let Ok(again) = again else {
            panic!("reopen failed")
        };
        assert_eq!(again.get("a"), v(json!(3), 10, 2));
        assert_eq!(again.len(), 1);
        let _ = fs::remove_dir_all(&dir);
    }
}
