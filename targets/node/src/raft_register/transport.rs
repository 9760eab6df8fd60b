//! Raft messages between nodes: `POST /raft/messages` carrying a batch of protobuf-encoded
//! messages, each prefixed by its length (u32 little-endian). One sender task per peer keeps
//! the messages to that peer in order, batches whatever is queued, and drops the queue when
//! the peer cannot be reached (Raft resends what matters).
//!
//! Sizes. A client body is at most 1 MiB, so a log entry (the command as JSON, which is
//! never longer than the body it came from, plus the key and a few fields) is at most
//! 1 MiB + 1 KiB. raft-rs puts entries in an append until they pass `max_size_per_msg`
//! (1 MiB) but always at least one, so an append is at most 1 MiB + 2 KiB. A batch holds
//! messages up to [`BATCH_BYTES`] (one message alone may pass it), and a snapshot always
//! travels alone: its data is the state as JSON, at most `--max-state-bytes`, plus less
//! than 1 KiB of metadata. [`body_limit`] is therefore max(4 MiB, state limit) + 64 KiB.

use std::collections::HashMap;
use std::sync::mpsc::Sender as LoopSender;
use std::time::Duration;

use protobuf::Message as PbMessage;
use raft::eraftpb::{Message, MessageType};
use tokio::sync::mpsc;

use super::node::Input;
use crate::peer::PeerToken;

/// How many messages may wait for one peer before new ones are dropped.
const QUEUE: usize = 4096;
/// Most messages sent in one request.
const BATCH: usize = 512;
/// A batch takes messages while it stays within this many bytes (the first one always).
pub const BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Room above the largest batch or snapshot for framing and metadata.
const MARGIN_BYTES: usize = 64 * 1024;
/// Timeout of one request to a peer.
const PEER_TIMEOUT: Duration = Duration::from_millis(1000);
/// A request carrying a snapshot may take this much longer per MiB (sending it, and the
/// peer checking it).
const SNAPSHOT_TIME_PER_MIB: Duration = Duration::from_millis(500);

/// The largest body `POST /raft/messages` accepts when the state holds at most
/// `max_state_bytes` (see the module docs).
pub fn body_limit(max_state_bytes: usize) -> usize {
    BATCH_BYTES.max(max_state_bytes) + MARGIN_BYTES
}

/// Encodes one message with its length prefix (`None` if it cannot be encoded).
fn frame(m: &Message) -> Option<Vec<u8>> {
    match m.write_to_bytes() {
        Ok(bytes) => {
            let mut out = Vec::with_capacity(bytes.len() + 4);
            out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes());
            out.extend_from_slice(&bytes);
            Some(out)
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a raft message");
            None
        }
    }
}

/// Encodes messages as length-prefixed protobuf.
#[cfg(test)]
pub fn encode(msgs: &[Message]) -> Vec<u8> {
    msgs.iter().filter_map(frame).flatten().collect()
}

/// Decodes a batch, handing each message to `check` as soon as it is decoded; `Err`
/// describes the first malformed or refused message. A batch holds at most [`BATCH`]
/// messages (what a sender puts in one), so a body of tiny messages cannot make the node
/// hold millions of them.
pub fn decode(
    mut buf: &[u8],
    mut check: impl FnMut(&Message) -> Result<(), String>,
) -> Result<Vec<Message>, String> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let n = out.len() + 1;
        if n > BATCH {
            return Err(format!("more than {BATCH} messages in a batch"));
        }
        if buf.len() < 4 {
            return Err(format!("message {n}: truncated length"));
        }
        let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        buf = &buf[4..];
        if buf.len() < len {
            return Err(format!("message {n}: truncated ({len} bytes announced)"));
        }
        let m = Message::parse_from_bytes(&buf[..len]).map_err(|e| format!("message {n}: {e}"))?;
        check(&m).map_err(|e| format!("message {n}: {e}"))?;
        out.push(m);
        buf = &buf[len..];
    }
    Ok(out)
}

/// Starts one sender task per peer (all but `self_id`) and returns their queues.
pub fn spawn_senders(
    peers: &HashMap<u64, String>,
    self_id: u64,
    loop_tx: LoopSender<Input>,
    client: reqwest::Client,
    token: PeerToken,
) -> HashMap<u64, mpsc::Sender<Message>> {
    let mut out = HashMap::new();
    for (&id, addr) in peers {
        if id == self_id {
            continue;
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        out.insert(id, tx);
        let url = format!("http://{addr}/raft/messages");
        tokio::spawn(sender(
            id,
            url,
            rx,
            loop_tx.clone(),
            client.clone(),
            token.clone(),
        ));
    }
    out
}

async fn sender(
    peer: u64,
    url: String,
    mut rx: mpsc::Receiver<Message>,
    loop_tx: LoopSender<Input>,
    client: reqwest::Client,
    token: PeerToken,
) {
    let mut held: Option<Message> = None;
    loop {
        let first = match held.take() {
            Some(m) => m,
            None => match rx.recv().await {
                Some(m) => m,
                None => return,
            },
        };
        let has_snapshot = first.get_msg_type() == MessageType::MsgSnapshot;
        let Some(mut body) = frame(&first) else {
            continue;
        };
        let mut count = 1;
        // A snapshot travels alone; other messages are batched up to BATCH_BYTES.
        while !has_snapshot && count < BATCH {
            let Ok(m) = rx.try_recv() else {
                break;
            };
            match frame(&m) {
                Some(f)
                    if m.get_msg_type() != MessageType::MsgSnapshot
                        && body.len() + f.len() <= BATCH_BYTES =>
                {
                    body.extend_from_slice(&f);
                    count += 1;
                }
                Some(_) => {
                    held = Some(m);
                    break;
                }
                None => {}
            }
        }
        let mut timeout = PEER_TIMEOUT;
        if has_snapshot {
            let mib = u32::try_from(body.len() >> 20).unwrap_or(u32::MAX);
            timeout += SNAPSHOT_TIME_PER_MIB.saturating_mul(mib);
        }
        tracing::debug!(
            peer,
            messages = count,
            bytes = body.len(),
            "sending a batch"
        );
        let result = client
            .post(&url)
            .header(reqwest::header::AUTHORIZATION, token.header_value())
            .timeout(timeout)
            .body(body)
            .send()
            .await;
        let ok = match &result {
            Ok(r) if r.status().is_success() => true,
            Ok(r) => {
                tracing::warn!(peer, status = %r.status(), "peer refused a batch");
                false
            }
            Err(_) => false,
        };
        if has_snapshot && loop_tx.send(Input::SnapshotSent { to: peer, ok }).is_err() {
            return;
        }
        if !ok {
            tracing::debug!(peer, "peer unreachable; dropping its queue");
            held = None;
            while rx.try_recv().is_ok() {}
            if loop_tx.send(Input::Unreachable(peer)).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_round_trip_and_garbage_is_rejected() {
        let mut a = Message::default();
        a.set_msg_type(MessageType::MsgHeartbeat);
        a.to = 2;
        a.from = 1;
        a.term = 7;
        let mut b = Message::default();
        b.set_msg_type(MessageType::MsgAppend);
        b.index = 42;
        let bytes = encode(&[a.clone(), b.clone()]);
        let all = |_: &Message| Ok(());
        let back = decode(&bytes, all).unwrap_or_default();
        assert_eq!(back, vec![a.clone(), b]);
        assert!(decode(&bytes[..bytes.len() - 1], all).is_err());
        assert!(decode(&[1, 2], all).is_err());
        assert!(decode(&[], all).map(|v| v.is_empty()).unwrap_or(false));
        // The check sees each message; the first refusal ends decoding.
        let mut seen = 0;
        let refused = decode(&bytes, |m| {
            seen += 1;
            if m.index == 42 {
                Err("no".to_owned())
            } else {
                Ok(())
            }
        });
        assert_eq!((refused, seen), (Err("message 2: no".to_owned()), 2));
        // At most BATCH messages, however small.
        assert!(decode(&vec![0u8; 4 * (BATCH + 1)], all).is_err());
        assert!(decode(&encode(&vec![a; BATCH]), all).is_ok());
    }
}
