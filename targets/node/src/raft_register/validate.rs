//! Checks on the Raft messages peers send, before raft-rs sees them.
//!
//! raft-rs 0.7 trusts its peers: several fields it takes from a message are asserted on
//! (`fatal!`, which panics) or used in arithmetic that overflows. A message from a peer
//! reaches raft-rs only if [`PeerCheck::check`] accepts it (the HTTP handler refuses the
//! whole batch otherwise), and then, in the Raft loop, after [`make_harmless`] looked at it
//! against the node's current log. What each rule prevents, in raft-rs 0.7's code:
//!
//! - `to` is this node, `from` another configured member; the type is one a peer of this
//!   node sends (append, heartbeat, snapshot, votes, pre-votes and their responses). Local
//!   types (`MsgHup`, ...) are refused by raft-rs too; `MsgPropose` would append whatever
//!   entries a peer likes to the leader's log; `MsgReadIndex`, `MsgReadIndexResp`,
//!   `MsgTransferLeader` and `MsgTimeoutNow` are never sent by these nodes.
//! - `term` is at least 1 (a peer message of term 0 skips raft-rs's term checks: a vote
//!   request of term 0 is answered with term 0 and `send` panics "term should be set";
//!   a heartbeat of term 0 reaches `commit_to` unchecked) and at most [`MAX_TERM`] (terms
//!   are incremented: `u64::MAX` overflows). `log_term` and `commit_term` are at most
//!   `term`.
//! - index-like fields (`index`, `commit`, `reject_hint`, snapshot and entry indexes) are
//!   below [`MAX_INDEX`]: raft-rs computes `index + 1` and `index + entries`.
//! - `priority` and `deprecated_priority` are 0 (a negative priority makes a node at term 0
//!   reject a pre-vote with term 0 and panic); `request_snapshot` is 0 (never requested
//!   here); `context` is empty except on heartbeats and their responses (ReadIndex
//!   contexts, at most [`MAX_CONTEXT`] bytes); no entries outside appends, no snapshot
//!   outside snapshot messages.
//! - appends and votes: `log_term` is 0 exactly when `index` is 0 (raft-rs finds any
//!   index past its log "matching" term 0, then commits up to `commit`: "to_commit out of
//!   range"). Entries follow `index` one by one (a gap or an index at or below the commit
//!   makes raft-rs panic "conflict with committed entry"), are normal entries (never a
//!   configuration change: the membership is fixed) with terms from `max(log_term, 1)` to
//!   `term`, never decreasing.
//! - snapshots: index and term at least 1 (a snapshot of term 0 "matches" past the log
//!   and commits beyond it), term at most the message's; the configuration is exactly the
//!   configured members as voters (any other makes raft-rs panic "unable to restore
//!   config" or "invalid restore", or leaves this node out); the data decodes as the state
//!   machine (otherwise the node would stop after installing it) and is at most
//!   `max_state_bytes` long.
//!
//! Against the node's current state ([`make_harmless`], in the Raft loop): a heartbeat's
//! `commit` is lowered to the last index of the log (raft-rs panics "to_commit out of
//! range" otherwise; a correct leader sends at most what it knows the follower holds, so
//! the only honest cause is a follower that lost its tail, and the prefix it kept is what
//! the leader has); an append response naming an index past the leader's log is dropped
//! (the leader would count as replicated entries the follower never received).

use std::collections::BTreeSet;

use raft::eraftpb::{EntryType, Message, MessageType};

use super::state::Registers;

/// Largest term accepted: 2^48, reached after as many elections (about 450,000 years at
/// one election a minute); far enough from `u64::MAX` that `term + 1` never overflows.
pub const MAX_TERM: u64 = 1 << 48;

/// Largest index accepted (exclusive): `index + entries + 1` never overflows below it.
pub const MAX_INDEX: u64 = 1 << 62;

/// Longest `context` accepted on a heartbeat or its response (this node's ReadIndex
/// contexts are 9 bytes).
pub const MAX_CONTEXT: usize = 64;

/// Checks peer messages against what a correct peer of this node sends.
#[derive(Debug, Clone)]
pub struct PeerCheck {
    me: u64,
    voters: BTreeSet<u64>,
    max_state_bytes: usize,
}

fn check(ok: bool, reason: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(reason())
    }
}

impl PeerCheck {
    /// A checker for node `me` of a cluster whose members are `voters`; snapshots hold a
    /// state of at most `max_state_bytes`.
    pub fn new(me: u64, voters: &[u64], max_state_bytes: usize) -> Self {
        Self {
            me,
            voters: voters.iter().copied().collect(),
            max_state_bytes,
        }
    }

    /// Whether a correct peer could have sent `m`; `Err` says why not.
    pub fn check(&self, m: &Message) -> Result<(), String> {
        let t = m.get_msg_type();
        check(m.to == self.me, || {
            format!("message for node {} received by node {}", m.to, self.me)
        })?;
        check(m.from != self.me && self.voters.contains(&m.from), || {
            format!("message from {}, not a peer of node {}", m.from, self.me)
        })?;
        use MessageType::*;
        let allowed = matches!(
            t,
            MsgAppend
                | MsgAppendResponse
                | MsgHeartbeat
                | MsgHeartbeatResponse
                | MsgSnapshot
                | MsgRequestVote
                | MsgRequestVoteResponse
                | MsgRequestPreVote
                | MsgRequestPreVoteResponse
        );
        check(allowed, || format!("{t:?} is not a message a peer sends"))?;
        check(m.term >= 1 && m.term <= MAX_TERM, || {
            format!("{t:?} with term {} (must be 1 to {MAX_TERM})", m.term)
        })?;
        check(m.log_term <= m.term && m.commit_term <= m.term, || {
            format!(
                "{t:?} with log_term {} / commit_term {} above its term {}",
                m.log_term, m.commit_term, m.term
            )
        })?;
        for (name, v) in [
            ("index", m.index),
            ("commit", m.commit),
            ("reject_hint", m.reject_hint),
        ] {
            check(v < MAX_INDEX, || {
                format!("{t:?} with {name} {v} (max {MAX_INDEX})")
            })?;
        }
        check(m.priority == 0 && m.deprecated_priority == 0, || {
            format!("{t:?} with a priority (never set here)")
        })?;
        check(m.request_snapshot == 0, || {
            format!("{t:?} requesting a snapshot (never done here)")
        })?;
        let context_ok = match t {
            MsgHeartbeat | MsgHeartbeatResponse => m.context.len() <= MAX_CONTEXT,
            _ => m.context.is_empty(),
        };
        check(context_ok, || {
            format!("{t:?} with a context of {} bytes", m.context.len())
        })?;
        check(t == MsgAppend || m.entries.is_empty(), || {
            format!("{t:?} carrying entries")
        })?;
        check(t == MsgSnapshot || !m.has_snapshot(), || {
            format!("{t:?} carrying a snapshot")
        })?;
        match t {
            MsgAppend => self.check_append(m),
            MsgRequestVote | MsgRequestPreVote => {
                check((m.index == 0) == (m.log_term == 0), || {
                    format!(
                        "{t:?} with last index {} and last term {}",
                        m.index, m.log_term
                    )
                })
            }
            MsgSnapshot => self.check_snapshot(m),
            _ => Ok(()),
        }
    }

    fn check_append(&self, m: &Message) -> Result<(), String> {
        check((m.index == 0) == (m.log_term == 0), || {
            format!(
                "append after index {} of term {}: only index 0 has term 0",
                m.index, m.log_term
            )
        })?;
        let n = u64::try_from(m.entries.len()).unwrap_or(u64::MAX);
        check(n < MAX_INDEX - m.index, || {
            format!("append of {n} entries after index {}", m.index)
        })?;
        let mut prev_term = m.log_term.max(1);
        for (i, e) in (1u64..).zip(m.entries.iter()) {
            check(e.index == m.index + i, || {
                format!(
                    "append after index {}: entry {i} has index {} (not {})",
                    m.index,
                    e.index,
                    m.index + i
                )
            })?;
            check(e.term >= prev_term && e.term <= m.term, || {
                format!(
                    "append: entry {} of term {} (must be {prev_term} to {})",
                    e.index, e.term, m.term
                )
            })?;
            check(e.get_entry_type() == EntryType::EntryNormal, || {
                format!("append: entry {} is a configuration change", e.index)
            })?;
            prev_term = e.term;
        }
        Ok(())
    }

    fn check_snapshot(&self, m: &Message) -> Result<(), String> {
        let snap = m.get_snapshot();
        let meta = snap.get_metadata();
        check(meta.index >= 1 && meta.index < MAX_INDEX, || {
            format!("snapshot at index {}", meta.index)
        })?;
        check(meta.term >= 1 && meta.term <= m.term, || {
            format!(
                "snapshot of term {} in a message of term {}",
                meta.term, m.term
            )
        })?;
        let cs = meta.get_conf_state();
        let voters: BTreeSet<u64> = cs.get_voters().iter().copied().collect();
        let exact = voters == self.voters
            && cs.get_voters().len() == self.voters.len()
            && cs.get_learners().is_empty()
            && cs.get_voters_outgoing().is_empty()
            && cs.get_learners_next().is_empty()
            && !cs.get_auto_leave();
        check(exact, || {
            format!(
                "snapshot configuration {:?} / learners {:?} / outgoing {:?} is not the cluster's voters {:?}",
                cs.get_voters(),
                cs.get_learners(),
                cs.get_voters_outgoing(),
                self.voters
            )
        })?;
        let data = snap.get_data();
        check(data.len() <= self.max_state_bytes, || {
            format!(
                "snapshot data of {} bytes (a state holds at most {})",
                data.len(),
                self.max_state_bytes
            )
        })?;
        Registers::from_bytes(data, self.max_state_bytes)
            .map(|_| ())
            .map_err(|e| format!("snapshot data is not a state: {e}"))
    }
}

/// Adjusts or drops (`Err`, with the reason) a checked peer message against the node's
/// log: see the module docs. `last_index` is the last index of the log, `leader` whether
/// this node leads.
pub fn make_harmless(m: &mut Message, last_index: u64, leader: bool) -> Result<(), String> {
    match m.get_msg_type() {
        MessageType::MsgHeartbeat if m.commit > last_index => {
            tracing::warn!(
                from = m.from,
                commit = m.commit,
                last_index,
                "heartbeat commit past the log lowered to its last index"
            );
            m.commit = last_index;
            Ok(())
        }
        MessageType::MsgAppendResponse if leader && m.index > last_index => Err(format!(
            "append response from {} for index {} past the log's last index {last_index}",
            m.from, m.index
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::eraftpb::{Entry, Snapshot};

    fn msg(t: MessageType, term: u64) -> Message {
        let mut m = Message::default();
        m.set_msg_type(t);
        m.from = 2;
        m.to = 1;
        m.term = term;
        m
    }

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            ..Default::default()
        }
    }

    fn pc() -> PeerCheck {
        PeerCheck::new(1, &[1, 2, 3], 1024)
    }

    #[test]
    fn what_correct_peers_send_passes() {
        let c = pc();
        let mut a = msg(MessageType::MsgAppend, 3);
        a.index = 5;
        a.log_term = 2;
        a.commit = 100;
        a.set_entries(vec![entry(6, 2), entry(7, 3)].into());
        assert_eq!(c.check(&a), Ok(()));
        let mut first = msg(MessageType::MsgAppend, 1);
        first.set_entries(vec![entry(1, 1)].into());
        assert_eq!(c.check(&first), Ok(()));
        let mut hb = msg(MessageType::MsgHeartbeat, 3);
        hb.context = vec![1; 9].into();
        assert_eq!(c.check(&hb), Ok(()));
        let mut v = msg(MessageType::MsgRequestPreVote, 4);
        (v.index, v.log_term, v.commit, v.commit_term) = (9, 3, 8, 3);
        assert_eq!(c.check(&v), Ok(()));
        let mut s = msg(MessageType::MsgSnapshot, 3);
        let mut snap = Snapshot::default();
        snap.set_data(br#"{"k":1}"#.to_vec().into());
        snap.mut_metadata().index = 40;
        snap.mut_metadata().term = 3;
        snap.mut_metadata()
            .mut_conf_state()
            .set_voters(vec![1, 2, 3]);
        s.set_snapshot(snap);
        assert_eq!(c.check(&s), Ok(()));
        let mut r = msg(MessageType::MsgAppendResponse, 3);
        (r.reject, r.index, r.reject_hint, r.log_term) = (true, 9, 7, 2);
        assert_eq!(c.check(&r), Ok(()));
    }

    #[test]
    fn what_would_crash_raft_rs_is_refused() {
        let c = pc();
        let refused = |m: &Message| c.check(m).is_err();
        assert!(refused(&msg(MessageType::MsgHeartbeat, 0)));
        assert!(refused(&msg(MessageType::MsgHeartbeat, u64::MAX)));
        assert!(refused(&msg(MessageType::MsgPropose, 3)));
        assert!(refused(&msg(MessageType::MsgHup, 3)));
        assert!(refused(&msg(MessageType::MsgTimeoutNow, 3)));
        let mut far = msg(MessageType::MsgAppend, 3);
        far.index = 1_000_000;
        assert!(refused(&far));
        let mut gap = msg(MessageType::MsgAppend, 3);
        (gap.index, gap.log_term) = (4, 2);
        gap.set_entries(vec![entry(6, 2)].into());
        assert!(refused(&gap));
        let mut back = msg(MessageType::MsgAppend, 3);
        (back.index, back.log_term) = (4, 3);
        back.set_entries(vec![entry(5, 2)].into());
        assert!(refused(&back));
        let mut cc = msg(MessageType::MsgAppend, 3);
        let mut e = entry(1, 1);
        e.set_entry_type(EntryType::EntryConfChange);
        cc.set_entries(vec![e].into());
        assert!(refused(&cc));
        let mut resp = msg(MessageType::MsgAppendResponse, 3);
        resp.index = u64::MAX;
        assert!(refused(&resp));
        let mut pv = msg(MessageType::MsgRequestPreVote, 1);
        pv.priority = -1;
        assert!(refused(&pv));
        let mut wrong_to = msg(MessageType::MsgHeartbeat, 3);
        wrong_to.to = 2;
        assert!(refused(&wrong_to));
        let mut from_self = msg(MessageType::MsgHeartbeat, 3);
        from_self.from = 1;
        assert!(refused(&from_self));
        let snap = |index: u64, term: u64, voters: Vec<u64>, data: &[u8]| {
            let mut s = msg(MessageType::MsgSnapshot, 3);
            let mut snap = Snapshot::default();
            snap.set_data(data.to_vec().into());
            snap.mut_metadata().index = index;
            snap.mut_metadata().term = term;
            snap.mut_metadata().mut_conf_state().set_voters(voters);
            s.set_snapshot(snap);
            s
        };
        assert!(refused(&snap(10, 0, vec![1, 2, 3], b"{}")));
        assert!(refused(&snap(10, 4, vec![1, 2, 3], b"{}")));
        assert!(refused(&snap(10, 3, vec![2, 3], b"{}")));
        assert!(refused(&snap(10, 3, vec![1, 2, 3], b"garbage")));
        assert!(refused(&snap(10, 3, vec![1, 2, 3], &[b' '; 2000])));
        assert!(!refused(&snap(10, 3, vec![3, 2, 1], b"{}")));
    }

    #[test]
    fn heartbeats_are_lowered_and_far_append_responses_dropped() {
        let mut hb = msg(MessageType::MsgHeartbeat, 3);
        hb.commit = 1_000_000;
        assert_eq!(make_harmless(&mut hb, 12, false), Ok(()));
        assert_eq!(hb.commit, 12);
        let mut r = msg(MessageType::MsgAppendResponse, 3);
        r.index = 13;
        assert!(make_harmless(&mut r, 12, true).is_err());
        r.index = 12;
        assert_eq!(make_harmless(&mut r, 12, true), Ok(()));
    }
}
