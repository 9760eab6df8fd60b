//! The recorder: appends every event to `history.jsonl` as it happens.
//!
//! Index and time are assigned under one lock at the moment an event is recorded, so the
//! index order is the real-time order the checkers rely on. Lines are buffered and flushed
//! every few milliseconds by a background thread, and fsynced at phase ends, so a harness
//! killed mid-run leaves a file that still parses (at worst a cut-short last line, which the
//! reader skips).

use faultline_history::{Event, EventType, JsonlWriter, Key, Process, Value};
use serde_json::Map;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread;
use std::time::{Duration, Instant};

/// How often buffered lines reach the file.
pub const FLUSH_EVERY: Duration = Duration::from_millis(5);

struct Inner {
    writer: JsonlWriter<BufWriter<File>>,
    next_index: u64,
    events: Vec<Event>,
    /// The first write error; recording goes on in memory.
    error: Option<String>,
}

/// A thread-safe, append-only history recorder.
pub struct Recorder {
    inner: Mutex<Inner>,
    start: Instant,
}

/// What to record: everything but index and time, which the recorder assigns.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Who.
    pub process: Process,
    /// invoke / ok / fail / info.
    pub kind: EventType,
    /// The function.
    pub f: String,
    /// The key.
    pub key: Option<String>,
    /// Argument or result.
    pub value: Value,
    /// Node that served it.
    pub node: Option<String>,
    /// Error text.
    pub error: Option<String>,
}

impl Recorder {
    /// Creates `path` (truncating it), writes the header with `meta` and starts the
    /// background flusher. `start` is the run's time origin.
    pub fn create(path: &Path, meta: &Map<String, Value>, start: Instant) -> io::Result<Arc<Self>> {
        let file = File::create(path)?;
        let mut writer = JsonlWriter::new(BufWriter::with_capacity(1 << 16, file));
        writer.write_header(meta)?;
        writer.flush()?;
        let rec = Arc::new(Recorder {
            inner: Mutex::new(Inner {
                writer,
                next_index: 0,
                events: Vec::new(),
                error: None,
            }),
            start,
        });
        let weak: Weak<Recorder> = Arc::downgrade(&rec);
        thread::Builder::new()
            .name("recorder-flush".into())
            .spawn(move || loop {
                thread::sleep(FLUSH_EVERY);
                match weak.upgrade() {
                    Some(r) => r.flush(),
                    None => break,
                }
            })?;
        Ok(rec)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the data half-written in a way that
        // matters more than losing the run, so keep going with what is there.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records one event now and returns it.
    pub fn record(&self, e: Entry) -> Event {
        let mut inner = self.lock();
        let ev = Event {
            index: inner.next_index,
            time: self.start.elapsed().as_nanos() as u64,
            process: e.process,
            kind: e.kind,
            f: e.f,
            key: e.key.map(Key),
            value: e.value,
            node: e.node,
            error: e.error,
        };
        inner.next_index += 1;
        if inner.error.is_none() {
            if let Err(err) = inner.writer.write_event(&ev) {
                inner.error = Some(err.to_string());
            }
        }
        inner.events.push(ev.clone());
        ev
    }

    /// Pushes buffered lines to the file.
    pub fn flush(&self) {
        let mut inner = self.lock();
        if inner.error.is_none() {
            if let Err(err) = inner.writer.flush() {
                inner.error = Some(err.to_string());
            }
        }
    }

    /// Flushes and fsyncs (at phase ends).
    pub fn sync(&self) -> io::Result<()> {
        let mut inner = self.lock();
        inner.writer.flush()?;
        inner.writer.get_ref().get_ref().sync_data()
    }

    /// Every event recorded so far (kept in memory too, so nothing is lost if the file
    /// cannot be written).
    pub fn events(&self) -> Vec<Event> {
        self.lock().events.clone()
    }

    /// The events recorded after the first `from` (for a reader that keeps up with the
    /// history as it grows).
    pub fn events_from(&self, from: usize) -> Vec<Event> {
        self.lock()
            .events
            .get(from..)
            .map(<[Event]>::to_vec)
            .unwrap_or_default()
    }

    /// Time since the run's origin, in ns (the clock of the events' `time`).
    pub fn elapsed_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// The first error met while writing the file, if any.
    pub fn write_error(&self) -> Option<String> {
        self.lock().error.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_history::JsonlReader;
    use std::io::BufReader;

    fn entry(p: u64, kind: EventType, f: &str, v: Value) -> Entry {
        Entry {
            process: Process::Client(p),
            kind,
            f: f.into(),
            key: Some("k0".into()),
            value: v,
            node: None,
            error: None,
        }
    }

    #[test]
    fn concurrent_records_get_increasing_indexes_and_times_and_parse_back() {
        let dir = std::env::temp_dir().join(format!("fl-rec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("history.jsonl");
        let mut meta = Map::new();
        meta.insert("seed".into(), Value::from(7));
        let rec = Recorder::create(&path, &meta, Instant::now()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|p| {
                let rec = rec.clone();
                thread::spawn(move || {
                    for i in 0..250u64 {
                        rec.record(entry(p, EventType::Invoke, "write", Value::from(i)));
                        rec.record(entry(p, EventType::Ok, "write", Value::from(i)));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        rec.sync().unwrap();
        let events = rec.events();
        assert_eq!(events.len(), 2000);
        for w in events.windows(2) {
            assert_eq!(w[1].index, w[0].index + 1);
            assert!(w[1].time >= w[0].time, "time must follow index order");
        }
        let file = BufReader::new(File::open(&path).unwrap());
        let history = JsonlReader::new(file, "history.jsonl").read_all().unwrap();
        assert_eq!(history.events, events);
        assert_eq!(history.meta.get("seed"), Some(&Value::from(7)));
        assert!(history.pair("history.jsonl").is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_flusher_writes_without_an_explicit_sync() {
        let dir = std::env::temp_dir().join(format!("fl-rec2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("history.jsonl");
        let rec = Recorder::create(&path, &Map::new(), Instant::now()).unwrap();
        rec.record(entry(0, EventType::Invoke, "read", Value::Null));
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(&path).unwrap();
            if text.lines().count() == 2 {
                break;
            }
            assert!(Instant::now() < deadline, "flusher never wrote the event");
            thread::sleep(Duration::from_millis(5));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
