//! Raft messages between nodes: `POST /raft/messages` carrying a batch of protobuf-encoded
//! messages, each prefixed by its length (u32 little-endian). One sender task per peer keeps
//! the messages to that peer in order, batches whatever is queued, and drops the queue when
//! the peer cannot be reached (Raft resends what matters).

use std::collections::HashMap;
use std::sync::mpsc::Sender as LoopSender;
use std::time::Duration;

use protobuf::Message as PbMessage;
use raft::eraftpb::{Message, MessageType};
use tokio::sync::mpsc;

use super::node::Input;

/// How many messages may wait for one peer before new ones are dropped.
const QUEUE: usize = 4096;
/// Most messages sent in one request.
const BATCH: usize = 512;
/// Timeout of one request to a peer.
const PEER_TIMEOUT: Duration = Duration::from_millis(1000);

/// Encodes messages as length-prefixed protobuf.
pub fn encode(msgs: &[Message]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        match m.write_to_bytes() {
            Ok(bytes) => {
                out.extend_from_slice(
                    &u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes(),
                );
                out.extend_from_slice(&bytes);
            }
            Err(e) => tracing::error!(error = %e, "cannot encode a raft message"),
        }
    }
    out
}

/// Decodes a batch; `Err` describes the first malformed part.
pub fn decode(mut buf: &[u8]) -> Result<Vec<Message>, String> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        if buf.len() < 4 {
            return Err("truncated length".to_owned());
        }
        let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        buf = &buf[4..];
        if buf.len() < len {
            return Err("truncated message".to_owned());
        }
        let m = Message::parse_from_bytes(&buf[..len]).map_err(|e| e.to_string())?;
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
) -> HashMap<u64, mpsc::Sender<Message>> {
    let mut out = HashMap::new();
    for (&id, addr) in peers {
        if id == self_id {
            continue;
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        out.insert(id, tx);
        let url = format!("http://{addr}/raft/messages");
        tokio::spawn(sender(id, url, rx, loop_tx.clone(), client.clone()));
    }
    out
}

async fn sender(
    peer: u64,
    url: String,
    mut rx: mpsc::Receiver<Message>,
    loop_tx: LoopSender<Input>,
    client: reqwest::Client,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = rx.recv().await {
        batch.clear();
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let has_snapshot = batch
            .iter()
            .any(|m| m.get_msg_type() == MessageType::MsgSnapshot);
        let result = client
            .post(&url)
            .timeout(PEER_TIMEOUT)
            .body(encode(&batch))
            .send()
            .await;
        let ok = matches!(&result, Ok(r) if r.status().is_success());
        if has_snapshot && loop_tx.send(Input::SnapshotSent { to: peer, ok }).is_err() {
            return;
        }
        if !ok {
            tracing::debug!(peer, "peer unreachable; dropping its queue");
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
        let back = decode(&bytes).unwrap_or_default();
        assert_eq!(back, vec![a, b]);
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode(&[1, 2]).is_err());
        assert!(decode(&[]).map(|v| v.is_empty()).unwrap_or(false));
    }
}
