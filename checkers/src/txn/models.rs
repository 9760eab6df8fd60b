//! Transactional anomalies, the isolation models that forbid them, and the model lattice.
//!
//! The names and the tables follow Elle (Kingsbury & Alvaro, VLDB 2020, and Elle's
//! `consistency-model` table), which draws on Adya (2000), Cerone, Bernardi & Gotsman
//! (CONCUR 2015), Bailis et al. (VLDB 2014) and Daudjee & Salem (ICDE 2004). Each model
//! lists the anomalies it forbids **directly** ([`TxnModel::direct`]); what a model forbids
//! in all ([`TxnModel::forbids`]) is that set, the sets of every model it implies, and
//! every anomaly that implies one of those ([`Anomaly::implies`]).
//!
//! | model | forbids directly | source |
//! |---|---|---|
//! | read-uncommitted (PL-1) | G0, duplicate-elements, garbage-read | Adya; Elle |
//! | read-committed (PL-2) | G1 (G1a, G1b, G1c) | Adya |
//! | cursor-stability (PL-CS) | G1, lost-update (G-cursor) | Adya; Bailis |
//! | monotonic-atomic-view | (what read-committed forbids) | Bailis |
//! | read-atomic | internal, G1a, future-read | Cerone; Elle (incomplete) |
//! | causal | internal, G1a | Cerone; Elle (incomplete) |
//! | repeatable-read (PL-2.99) | G1, G2-item, lost-update | Adya; Bailis |
//! | snapshot-isolation (PL-SI) | internal, G1, G-nonadjacent, lost-update | Adya; Cerone & Gotsman; Elle |
//! | serializable (PL-3) | internal, G1, G2 | Adya |
//! | strict-serializable (PL-SS) | G1, G1c-realtime, G2-realtime | Adya |
//! | strong-session-read-uncommitted | G0-process | Elle |
//! | strong-session-read-committed | G1c-process | Elle |
//! | strong-read-uncommitted | G0-realtime | Elle |
//! | strong-read-committed | G1c-realtime | Elle |
//! | strong-session-snapshot-isolation | internal, G1-process, G-nonadjacent-process | Daudjee & Salem; Elle |
//! | strong-snapshot-isolation | internal, G1-realtime, G-nonadjacent-realtime | Daudjee & Salem; Elle |
//! | strong-session-serializable | G1-process, G2-process | Daudjee & Salem |
//!
//! Snapshot isolation gets lost-update through Elle's chain SI ⇒ parallel SI ⇒ ROLA, and
//! G-nonadjacent from Cerone & Gotsman (PODC 2016): a history is SI iff every cycle of its
//! dependency graph has two adjacent anti-dependency edges.

use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// A transactional anomaly. Cycle anomalies come in three variants: over the dependency
/// graph alone, with process (session) order edges, and with real-time edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Anomaly {
    /// A cycle of write-write (ww) edges only (Adya G0, dirty write).
    G0,
    /// G0 with process-order edges.
    G0Process,
    /// G0 with real-time edges.
    G0Realtime,
    /// A cycle of ww and write-read (wr) edges with at least one wr (Adya G1c).
    G1c,
    /// G1c with process-order edges.
    G1cProcess,
    /// G1c with real-time edges.
    G1cRealtime,
    /// A cycle with exactly one anti-dependency (rw) edge (Adya G-single, read skew).
    GSingle,
    /// G-single with process-order edges.
    GSingleProcess,
    /// G-single with real-time edges.
    GSingleRealtime,
    /// A cycle with two or more rw edges, no two of them adjacent.
    GNonadjacent,
    /// G-nonadjacent with process-order edges.
    GNonadjacentProcess,
    /// G-nonadjacent with real-time edges.
    GNonadjacentRealtime,
    /// A cycle with two or more rw edges, two of them adjacent (Adya G2-item, write skew).
    G2Item,
    /// G2-item with process-order edges.
    G2ItemProcess,
    /// G2-item with real-time edges.
    G2ItemRealtime,
    /// A committed read observed a write of an aborted transaction (Adya G1a).
    G1a,
    /// A committed read observed a version a transaction later overwrote itself (Adya G1b).
    G1b,
    /// A read disagrees with the transaction's own earlier reads and writes.
    Internal,
    /// A committed write was installed on top of an aborted one.
    DirtyUpdate,
    /// A read shows the same appended element twice.
    DuplicateElements,
    /// Two reads of a key show orders that no single history of the key explains.
    IncompatibleOrder,
    /// A transaction read a value it writes only later.
    FutureRead,
    /// A transaction read a key, another wrote it, then the first wrote it (Berenson P4,
    /// Adya G-cursor on one key).
    LostUpdate,
    /// A read observed a value no transaction wrote.
    GarbageRead,
    /// Any of G1a, G1b, G1c (never found itself; named by the tables).
    G1,
    /// G1 with process edges (tables only).
    G1Process,
    /// G1 with real-time edges (tables only).
    G1Realtime,
    /// Any cycle with an rw edge (tables only).
    G2,
    /// G2 with process edges (tables only).
    G2Process,
    /// G2 with real-time edges (tables only).
    G2Realtime,
}

impl Anomaly {
    /// Every anomaly, the ones the checker reports first (in order of severity).
    pub const ALL: [Anomaly; 30] = {
        use Anomaly::*;
        [
            GarbageRead,
            DuplicateElements,
            IncompatibleOrder,
            Internal,
            FutureRead,
            G1a,
            DirtyUpdate,
            G1b,
            G0,
            G1c,
            GSingle,
            GNonadjacent,
            G2Item,
            LostUpdate,
            G0Process,
            G1cProcess,
            GSingleProcess,
            GNonadjacentProcess,
            G2ItemProcess,
            G0Realtime,
            G1cRealtime,
            GSingleRealtime,
            GNonadjacentRealtime,
            G2ItemRealtime,
            G1,
            G1Process,
            G1Realtime,
            G2,
            G2Process,
            G2Realtime,
        ]
    };

    /// The name Elle uses (`G-single-process`, `lost-update`, ...).
    pub fn as_str(self) -> &'static str {
        use Anomaly::*;
        match self {
            G0 => "G0",
            G0Process => "G0-process",
            G0Realtime => "G0-realtime",
            G1c => "G1c",
            G1cProcess => "G1c-process",
            G1cRealtime => "G1c-realtime",
            GSingle => "G-single",
            GSingleProcess => "G-single-process",
            GSingleRealtime => "G-single-realtime",
            GNonadjacent => "G-nonadjacent",
            GNonadjacentProcess => "G-nonadjacent-process",
            GNonadjacentRealtime => "G-nonadjacent-realtime",
            G2Item => "G2-item",
            G2ItemProcess => "G2-item-process",
            G2ItemRealtime => "G2-item-realtime",
            G1a => "G1a",
            G1b => "G1b",
            Internal => "internal",
            DirtyUpdate => "dirty-update",
            DuplicateElements => "duplicate-elements",
            IncompatibleOrder => "incompatible-order",
            FutureRead => "future-read",
            LostUpdate => "lost-update",
            GarbageRead => "garbage-read",
            G1 => "G1",
            G1Process => "G1-process",
            G1Realtime => "G1-realtime",
            G2 => "G2",
            G2Process => "G2-process",
            G2Realtime => "G2-realtime",
        }
    }

    /// What the anomaly is, in a few words.
    pub fn meaning(self) -> String {
        use Anomaly::*;
        let via = if self.as_str().ends_with("-process") {
            ", through process order"
        } else if self.as_str().ends_with("-realtime") {
            ", through real-time order"
        } else {
            ""
        };
        let base = match self {
            G0 | G0Process | G0Realtime => "a cycle of write dependencies (dirty write)",
            G1c | G1cProcess | G1cRealtime => {
                "a cycle of write and read dependencies (circular information flow)"
            }
            GSingle | GSingleProcess | GSingleRealtime => {
                "a cycle with exactly one anti-dependency (read skew)"
            }
            GNonadjacent | GNonadjacentProcess | GNonadjacentRealtime => {
                "a cycle whose anti-dependencies are never adjacent (forbidden by snapshot isolation)"
            }
            G2Item | G2ItemProcess | G2ItemRealtime => {
                "a cycle with adjacent anti-dependencies (write skew)"
            }
            G1a => "a committed read observed an aborted write (aborted read)",
            G1b => "a committed read observed an intermediate version (intermediate read)",
            Internal => "a read disagrees with its own transaction's earlier reads and writes",
            DirtyUpdate => "a committed write was installed on top of an aborted one",
            DuplicateElements => "a read shows one append twice",
            IncompatibleOrder => "two reads of a key disagree on its order",
            FutureRead => "a transaction read its own later write",
            LostUpdate => "a write was lost between a transaction's read and its own write",
            GarbageRead => "a read observed a value nobody wrote",
            G1 | G1Process | G1Realtime => "an aborted read, intermediate read or G1c cycle",
            G2 | G2Process | G2Realtime => "a cycle with an anti-dependency",
        };
        format!("{base}{via}")
    }

    /// The anomalies this one implies directly (Elle's `implied-anomalies`, with every
    /// cycle here being over items, so G-single and G-nonadjacent are also G2-item).
    pub fn implies(self) -> &'static [Anomaly] {
        use Anomaly::*;
        match self {
            G0 => &[G1c, G0Process],
            G0Process => &[G1cProcess, G0Realtime],
            G0Realtime => &[G1cRealtime],
            G1a | G1b => &[G1],
            G1c => &[G1, G1cProcess],
            G1cProcess => &[G1cRealtime, G1Process],
            G1cRealtime => &[G1Realtime],
            G1 => &[G1Process],
            G1Process => &[G1Realtime],
            G1Realtime => &[],
            GSingle => &[GNonadjacent, GSingleProcess],
            GSingleProcess => &[GNonadjacentProcess, GSingleRealtime],
            GSingleRealtime => &[GNonadjacentRealtime],
            GNonadjacent => &[G2Item, GNonadjacentProcess],
            GNonadjacentProcess => &[G2ItemProcess, GNonadjacentRealtime],
            GNonadjacentRealtime => &[G2ItemRealtime],
            G2Item => &[G2, G2ItemProcess],
            G2ItemProcess => &[G2Process, G2ItemRealtime],
            G2ItemRealtime => &[G2Realtime],
            G2 => &[G2Process],
            G2Process => &[G2Realtime],
            G2Realtime => &[],
            IncompatibleOrder | DirtyUpdate => &[G1a],
            FutureRead => &[G1c],
            LostUpdate => &[G2Item],
            Internal | DuplicateElements | GarbageRead => &[],
        }
    }

    /// This anomaly and every anomaly it implies, transitively.
    pub fn closure(self) -> Vec<Anomaly> {
        let mut out = vec![self];
        let mut i = 0;
        while i < out.len() {
            for &a in out[i].implies() {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
            i += 1;
        }
        out
    }

    /// Whether this is a cycle anomaly (found in the dependency graph).
    pub fn is_cycle(self) -> bool {
        use Anomaly::*;
        matches!(
            self,
            G0 | G0Process
                | G0Realtime
                | G1c
                | G1cProcess
                | G1cRealtime
                | GSingle
                | GSingleProcess
                | GSingleRealtime
                | GNonadjacent
                | GNonadjacentProcess
                | GNonadjacentRealtime
                | G2Item
                | G2ItemProcess
                | G2ItemRealtime
        )
    }
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A transactional isolation model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TxnModel {
    /// Strict serializability (PL-SS): serializable in an order that respects real time.
    StrictSerializable,
    /// Strong session serializability: serializable in an order that respects each
    /// process's order.
    StrongSessionSerializable,
    /// Serializability (Adya PL-3, conflict serializability).
    Serializable,
    /// Strong snapshot isolation: snapshot isolation whose snapshots respect real time.
    StrongSnapshotIsolation,
    /// Strong session snapshot isolation: snapshots respect each process's order.
    StrongSessionSnapshotIsolation,
    /// Snapshot isolation (Adya PL-SI; generalized SI).
    SnapshotIsolation,
    /// Repeatable read (Adya PL-2.99).
    RepeatableRead,
    /// Cursor stability (Adya PL-CS).
    CursorStability,
    /// Causal consistency with atomic visibility (Cerone et al.).
    Causal,
    /// Read atomic (Cerone et al.; Bailis et al.).
    ReadAtomic,
    /// Monotonic atomic view (Bailis et al.).
    MonotonicAtomicView,
    /// Strong read committed: read committed with real-time edges (Elle).
    StrongReadCommitted,
    /// Strong session read committed: read committed with process edges (Elle).
    StrongSessionReadCommitted,
    /// Read committed (Adya PL-2).
    ReadCommitted,
    /// Strong read uncommitted: read uncommitted with real-time edges (Elle).
    StrongReadUncommitted,
    /// Strong session read uncommitted: read uncommitted with process edges (Elle).
    StrongSessionReadUncommitted,
    /// Read uncommitted (Adya PL-1).
    ReadUncommitted,
}

impl TxnModel {
    /// Every model, strongest first.
    pub const ALL: [TxnModel; 17] = {
        use TxnModel::*;
        [
            StrictSerializable,
            StrongSessionSerializable,
            Serializable,
            StrongSnapshotIsolation,
            StrongSessionSnapshotIsolation,
            SnapshotIsolation,
            RepeatableRead,
            CursorStability,
            Causal,
            ReadAtomic,
            MonotonicAtomicView,
            StrongReadCommitted,
            StrongSessionReadCommitted,
            ReadCommitted,
            StrongReadUncommitted,
            StrongSessionReadUncommitted,
            ReadUncommitted,
        ]
    };

    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        use TxnModel::*;
        match self {
            StrictSerializable => "strict-serializable",
            StrongSessionSerializable => "strong-session-serializable",
            Serializable => "serializable",
            StrongSnapshotIsolation => "strong-snapshot-isolation",
            StrongSessionSnapshotIsolation => "strong-session-snapshot-isolation",
            SnapshotIsolation => "snapshot-isolation",
            RepeatableRead => "repeatable-read",
            CursorStability => "cursor-stability",
            Causal => "causal",
            ReadAtomic => "read-atomic",
            MonotonicAtomicView => "monotonic-atomic-view",
            StrongReadCommitted => "strong-read-committed",
            StrongSessionReadCommitted => "strong-session-read-committed",
            ReadCommitted => "read-committed",
            StrongReadUncommitted => "strong-read-uncommitted",
            StrongSessionReadUncommitted => "strong-session-read-uncommitted",
            ReadUncommitted => "read-uncommitted",
        }
    }

    /// The models this one implies directly (Elle's model graph, restricted to these
    /// models: SI reaches causal through prefix consistency and parallel SI, and cursor
    /// stability through (forward) consistent view).
    pub fn implies(self) -> &'static [TxnModel] {
        use TxnModel::*;
        match self {
            StrictSerializable => &[StrongSessionSerializable, StrongSnapshotIsolation],
            StrongSessionSerializable => &[Serializable, StrongSessionSnapshotIsolation],
            Serializable => &[RepeatableRead, SnapshotIsolation],
            StrongSnapshotIsolation => &[StrongSessionSnapshotIsolation, StrongReadCommitted],
            StrongSessionSnapshotIsolation => &[SnapshotIsolation, StrongSessionReadCommitted],
            SnapshotIsolation => &[CursorStability, MonotonicAtomicView, Causal],
            RepeatableRead => &[CursorStability, MonotonicAtomicView],
            CursorStability => &[ReadCommitted],
            Causal => &[ReadAtomic],
            ReadAtomic => &[MonotonicAtomicView],
            MonotonicAtomicView => &[ReadCommitted],
            StrongReadCommitted => &[StrongSessionReadCommitted, StrongReadUncommitted],
            StrongSessionReadCommitted => &[ReadCommitted, StrongSessionReadUncommitted],
            ReadCommitted => &[ReadUncommitted],
            StrongReadUncommitted => &[StrongSessionReadUncommitted],
            StrongSessionReadUncommitted => &[ReadUncommitted],
            ReadUncommitted => &[],
        }
    }

    /// Whether `self` implies `other` (through any chain; not itself).
    pub fn stronger_than(self, other: TxnModel) -> bool {
        self.implies()
            .iter()
            .any(|&m| m == other || m.stronger_than(other))
    }

    /// The anomalies this model forbids directly (the table of the module documentation).
    pub fn direct(self) -> &'static [Anomaly] {
        use Anomaly::*;
        use TxnModel::*;
        match self {
            StrictSerializable => &[G1, G1cRealtime, G2Realtime],
            StrongSessionSerializable => &[G1Process, G2Process],
            Serializable => &[Internal, G1, G2],
            StrongSnapshotIsolation => &[Internal, G1Realtime, GNonadjacentRealtime],
            StrongSessionSnapshotIsolation => &[Internal, G1Process, GNonadjacentProcess],
            SnapshotIsolation => &[Internal, G1, GNonadjacent, LostUpdate],
            RepeatableRead => &[G1, G2Item, LostUpdate],
            CursorStability => &[G1, LostUpdate],
            Causal => &[Internal, G1a],
            ReadAtomic => &[Internal, G1a, FutureRead],
            MonotonicAtomicView => &[],
            StrongReadCommitted => &[G1cRealtime],
            StrongSessionReadCommitted => &[G1cProcess],
            ReadCommitted => &[G1],
            StrongReadUncommitted => &[G0Realtime],
            StrongSessionReadUncommitted => &[G0Process],
            ReadUncommitted => &[G0, DuplicateElements, GarbageRead],
        }
    }

    /// Every anomaly named by this model or a model it implies.
    fn named(self) -> Vec<Anomaly> {
        let mut out: Vec<Anomaly> = self.direct().to_vec();
        for &m in self.implies() {
            for a in m.named() {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
        out
    }

    /// Whether a history showing `anomaly` violates this model: the anomaly, or one it
    /// implies, is forbidden by this model or by a model it implies.
    pub fn forbids(self, anomaly: Anomaly) -> bool {
        let named = self.named();
        anomaly.closure().iter().any(|a| named.contains(a))
    }

    /// Which edges beyond the dependency graph the model's cycles use: process order,
    /// real time.
    pub fn needs(self) -> (bool, bool) {
        let proc = Anomaly::ALL
            .iter()
            .any(|&a| a.is_cycle() && self.forbids(a) && a.as_str().ends_with("-process"));
        let rt = Anomaly::ALL
            .iter()
            .any(|&a| a.is_cycle() && self.forbids(a) && a.as_str().ends_with("-realtime"));
        (proc, rt)
    }

    /// Whether "no forbidden anomaly found" proves the model on a list-append history
    /// whose version orders were all inferred. Read atomic, causal and monotonic atomic
    /// view are checked only for the anomalies Elle names for them, which do not cover
    /// every violation (fractured reads, causality through chains): their pass is
    /// `unknown` unless a stronger model holds.
    pub fn complete_for_list_append(self) -> bool {
        !matches!(
            self,
            TxnModel::Causal | TxnModel::ReadAtomic | TxnModel::MonotonicAtomicView
        )
    }

    /// Whether "no forbidden anomaly found" proves the model on an rw-register history,
    /// whose reads reveal only part of each key's version order: only the models decided
    /// by write and read dependencies alone (a topological order of those edges is then a
    /// version order with no forbidden cycle).
    pub fn complete_for_register(self) -> bool {
        use TxnModel::*;
        matches!(
            self,
            ReadUncommitted
                | StrongSessionReadUncommitted
                | StrongReadUncommitted
                | ReadCommitted
                | StrongSessionReadCommitted
                | StrongReadCommitted
        )
    }
}

impl fmt::Display for TxnModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a transactional model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown transactional model `{0}` (expected one of strict-serializable, strong-session-serializable, serializable, strong-snapshot-isolation, strong-session-snapshot-isolation, snapshot-isolation, repeatable-read, cursor-stability, causal, read-atomic, monotonic-atomic-view, strong-read-committed, strong-session-read-committed, read-committed, strong-read-uncommitted, strong-session-read-uncommitted, read-uncommitted)")]
pub struct UnknownTxnModel(pub String);

impl FromStr for TxnModel {
    type Err = UnknownTxnModel;
    fn from_str(s: &str) -> Result<TxnModel, UnknownTxnModel> {
        let lower = s.trim().to_ascii_lowercase().replace('_', "-");
        let alias = match lower.as_str() {
            "si" => "snapshot-isolation",
            "ser" | "serializability" | "pl-3" => "serializable",
            "strict-serializability" | "strong-serializable" | "pl-ss" => "strict-serializable",
            "rc" | "pl-2" => "read-committed",
            "ru" | "pl-1" => "read-uncommitted",
            "rr" | "pl-2.99" => "repeatable-read",
            "pl-cs" => "cursor-stability",
            "pl-si" => "snapshot-isolation",
            "causal-cerone" => "causal",
            "mav" => "monotonic-atomic-view",
            "ra" => "read-atomic",
            other => other,
        };
        TxnModel::ALL
            .into_iter()
            .find(|m| m.as_str() == alias)
            .ok_or_else(|| UnknownTxnModel(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stronger_model_forbids_everything_a_weaker_one_does() {
        for s in TxnModel::ALL {
            for w in TxnModel::ALL {
                if s.stronger_than(w) {
                    for a in Anomaly::ALL {
                        assert!(!w.forbids(a) || s.forbids(a), "{s} ⇒ {w} but {a}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_table_says_what_elle_says() {
        use Anomaly::*;
        use TxnModel::*;
        assert!(Serializable.forbids(GSingle) && Serializable.forbids(G2Item));
        assert!(SnapshotIsolation.forbids(GSingle) && !SnapshotIsolation.forbids(G2Item));
        assert!(SnapshotIsolation.forbids(GNonadjacent));
        assert!(
            !Serializable.forbids(GSingleProcess) && StrictSerializable.forbids(GSingleProcess)
        );
        assert!(StrictSerializable.forbids(G2ItemRealtime));
        assert!(!StrongSessionSerializable.forbids(G2ItemRealtime));
        assert!(ReadCommitted.forbids(G1b) && !ReadCommitted.forbids(GSingle));
        assert!(!ReadCommitted.forbids(LostUpdate) && CursorStability.forbids(LostUpdate));
        assert!(ReadUncommitted.forbids(G0) && !ReadUncommitted.forbids(G1a));
        assert!(ReadCommitted.forbids(IncompatibleOrder) && ReadCommitted.forbids(DirtyUpdate));
        assert!(ReadAtomic.forbids(FutureRead) && Causal.forbids(Internal));
        assert!(!ReadCommitted.forbids(Internal));
        assert!(SnapshotIsolation.stronger_than(Causal));
        assert!(StrictSerializable.stronger_than(ReadUncommitted));
        assert_eq!(StrictSerializable.needs(), (true, true));
        assert_eq!(StrongSessionSerializable.needs(), (true, false));
        assert_eq!(Serializable.needs(), (false, false));
        assert_eq!("si".parse::<TxnModel>(), Ok(SnapshotIsolation));
        assert!("linearizable".parse::<TxnModel>().is_err());
    }
}
