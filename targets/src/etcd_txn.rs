//! Transactions (list-append, rw-register) against etcd, guarded by revisions.
//!
//! etcd's KV API has no interactive transactions: one `/v3/kv/txn` evaluates compares and
//! then runs a fixed list of puts and ranges. A transaction of micro-operations is carried
//! out in two requests:
//!
//! 1. **Read**: one `/v3/kv/txn` without compares whose success branch ranges every key
//!    the transaction touches. etcd serves it at one revision (a read-only txn goes
//!    through ReadIndex, so it is linearizable). Each key's value (JSON text: a list for
//!    list-append, a number for rw-register) and `mod_revision` are kept.
//! 2. **Compute** locally: reads see the snapshot and the transaction's own earlier
//!    writes; an append to a key that holds something other than a list aborts (`fail`,
//!    `not-a-list`, nothing sent).
//! 3. **Commit** (only when the transaction writes): one `/v3/kv/txn` whose compares
//!    require every touched key's `mod_revision` to be the one read (`create_revision`
//!    0 for a key that was absent) and whose success branch puts the new values.
//!    `succeeded` → ok with the reads of step 2; not succeeded → `fail` (`conflict`:
//!    another write came between, nothing applied). A read-only transaction is step 1
//!    alone.
//!
//! The commit applies at one revision at which every key still holds what was read, so
//! the transaction takes effect atomically there, with the reads it reports.
//!
//! Answers: step 1 changes nothing, so whatever goes wrong there is `fail`. The commit's
//! errors are mapped as a put's ([`crate::etcd::map_grpc_error`]): `fail` only for what
//! etcd refuses before proposing, `info` otherwise.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::etcd::{b64_decode, b64_encode, map_grpc_error};
use crate::target::{mops_json, ClientOp, Completion, CompletionKind, Mop};

/// What step 1 found for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The key's value (`None`: absent, never written).
    pub value: Option<Value>,
    /// Its `mod_revision` (0 when absent).
    pub mod_revision: i64,
}

/// The etcd key of transaction key `k`: `txn/{k}`, base64 as the gateway wants it.
pub fn etcd_key(k: u64) -> String {
    b64_encode(format!("txn/{k}").as_bytes())
}

/// The keys a transaction touches, each once, in first-use order.
pub fn touched(mops: &[Mop]) -> Vec<u64> {
    let mut keys = Vec::new();
    for m in mops {
        if !keys.contains(&m.key()) {
            keys.push(m.key());
        }
    }
    keys
}

/// Step 1's body: a txn without compares that ranges every key.
pub fn read_body(keys: &[u64]) -> Value {
    json!({
        "success": keys
            .iter()
            .map(|k| json!({ "request_range": { "key": etcd_key(*k) } }))
            .collect::<Vec<_>>(),
    })
}

/// An int64 as the gateway writes it (a decimal string; a number is read too).
fn int64(v: Option<&Value>) -> Option<i64> {
    match v {
        Some(Value::String(s)) => s.parse().ok(),
        Some(Value::Number(n)) => n.as_i64(),
        None => Some(0),
        _ => None,
    }
}

/// Reads step 1's answer: one [`Stored`] per key, in `keys`' order; `Err` with the
/// completion (always `fail`: nothing was written) when it is not a successful answer.
pub fn parse_read_answer(
    status: u16,
    body: &[u8],
    keys: &[u64],
) -> Result<Vec<Stored>, Completion> {
    let bad = |why: String| Err(Completion::fail(format!("read step: {why}")));
    let doc: Value = match serde_json::from_slice(body) {
        Ok(d) => d,
        Err(_) => return bad(format!("unreadable answer (HTTP {status})")),
    };
    if let Some(message) = doc
        .get("error")
        .or_else(|| doc.get("message"))
        .and_then(Value::as_str)
    {
        return Err(Completion::fail(message));
    }
    if status != 200 || !doc.get("header").is_some_and(Value::is_object) {
        return bad(format!("unexpected answer (HTTP {status})"));
    }
    let responses = doc
        .get("responses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if responses.len() != keys.len() {
        return bad(format!(
            "{} ranges answered for {} keys",
            responses.len(),
            keys.len()
        ));
    }
    let mut out = Vec::with_capacity(keys.len());
    for (r, k) in responses.iter().zip(keys) {
        let kv = r
            .get("response_range")
            .and_then(|rr| rr.get("kvs"))
            .and_then(Value::as_array)
            .and_then(|kvs| kvs.first());
        let Some(kv) = kv else {
            out.push(Stored {
                value: None,
                mod_revision: 0,
            });
            continue;
        };
        let text = kv
            .get("value")
            .and_then(Value::as_str)
            .and_then(b64_decode)
            .and_then(|b| String::from_utf8(b).ok());
        let value = text.and_then(|t| serde_json::from_str::<Value>(&t).ok());
        let (Some(value), Some(rev)) = (value, int64(kv.get("mod_revision"))) else {
            return bad(format!("key {k} holds a value this workload did not write"));
        };
        out.push(Stored {
            value: Some(value),
            mod_revision: rev,
        });
    }
    Ok(out)
}

/// What the transaction reads and writes, computed from the snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// The micro-operations with their reads filled in (the ok completion's value).
    pub completed: Value,
    /// The keys written and their final values, in first-write order.
    pub writes: Vec<(u64, Value)>,
}

/// Step 2: runs `mops` over the snapshot (`keys[i]` holds `snapshot[i]`). An append to a
/// key that holds something other than a list is `Err` (`fail`, `not-a-list`).
pub fn plan(mops: &[Mop], keys: &[u64], snapshot: &[Stored]) -> Result<Planned, Completion> {
    let mut state: BTreeMap<u64, Option<Value>> = keys
        .iter()
        .zip(snapshot)
        .map(|(k, s)| (*k, s.value.clone()))
        .collect();
    let mut written: Vec<u64> = Vec::new();
    let mut completed = Vec::with_capacity(mops.len());
    for m in mops {
        let slot = state.entry(m.key()).or_insert(None);
        match m {
            Mop::Read(k) => {
                completed.push(json!(["r", k, slot.clone().unwrap_or(Value::Null)]));
            }
            Mop::Write(k, v) => {
                *slot = Some(json!(v));
                completed.push(m.to_json());
                if !written.contains(k) {
                    written.push(*k);
                }
            }
            Mop::Append(k, v) => {
                match slot {
                    None => *slot = Some(json!([v])),
                    Some(Value::Array(list)) => list.push(json!(v)),
                    Some(_) => {
                        return Err(Completion::fail("not-a-list"));
                    }
                }
                completed.push(m.to_json());
                if !written.contains(k) {
                    written.push(*k);
                }
            }
        }
    }
    let writes = written
        .into_iter()
        .map(|k| (k, state.get(&k).cloned().flatten().unwrap_or(Value::Null)))
        .collect();
    Ok(Planned {
        completed: Value::Array(completed),
        writes,
    })
}

/// Step 3's body: every touched key unchanged since step 1 (its `mod_revision`, or
/// `create_revision` 0 when it was absent), then put every written key's new value.
pub fn commit_body(keys: &[u64], snapshot: &[Stored], writes: &[(u64, Value)]) -> Value {
    let compare: Vec<Value> = keys
        .iter()
        .zip(snapshot)
        .map(|(k, s)| match s.value {
            Some(_) => json!({
                "key": etcd_key(*k),
                "target": "MOD",
                "result": "EQUAL",
                "mod_revision": s.mod_revision.to_string(),
            }),
            None => json!({
                "key": etcd_key(*k),
                "target": "CREATE",
                "result": "EQUAL",
                "create_revision": "0",
            }),
        })
        .collect();
    let success: Vec<Value> = writes
        .iter()
        .map(|(k, v)| {
            json!({ "request_put": {
                "key": etcd_key(*k),
                "value": b64_encode(v.to_string().as_bytes()),
            }})
        })
        .collect();
    json!({ "compare": compare, "success": success })
}

/// Maps the commit's answer: `succeeded` → ok with `completed`; not succeeded (the
/// gateway leaves `false` out) → `fail` with `conflict`; an error document as a put's;
/// anything else `info`.
pub fn map_commit_answer(status: u16, body: &[u8], op: &ClientOp, completed: &Value) -> Completion {
    let doc: Value = match serde_json::from_slice(body) {
        Ok(d) => d,
        Err(_) => {
            let text = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
            return Completion::info(format!("unreadable answer (HTTP {status}): {text}"));
        }
    };
    if let Some(message) = doc
        .get("error")
        .or_else(|| doc.get("message"))
        .and_then(Value::as_str)
    {
        return map_grpc_error(op, doc.get("code").and_then(Value::as_i64), message);
    }
    if status != 200 || !doc.get("header").is_some_and(Value::is_object) {
        return Completion::info(format!("unexpected answer (HTTP {status})"));
    }
    match doc.get("succeeded") {
        Some(Value::Bool(true)) => Completion {
            kind: CompletionKind::Ok,
            value: completed.clone(),
            error: None,
            node: None,
        },
        None | Some(Value::Bool(false)) => Completion::fail("conflict"),
        Some(other) => Completion::info(format!("unexpected succeeded: {other}")),
    }
}

/// The completion of a read-only transaction from step 1's snapshot.
pub fn read_only(mops: &[Mop], keys: &[u64], snapshot: &[Stored]) -> Completion {
    match plan(mops, keys, snapshot) {
        Ok(p) => Completion {
            kind: CompletionKind::Ok,
            value: p.completed,
            error: None,
            node: None,
        },
        Err(c) => c,
    }
}

/// The invoke's value, for messages.
pub fn describe(mops: &[Mop]) -> String {
    mops_json(mops).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: u64) -> String {
        etcd_key(k)
    }

    fn val(text: &str) -> String {
        b64_encode(text.as_bytes())
    }

    #[test]
    fn the_read_step_ranges_every_touched_key_once() {
        let mops = [Mop::Append(3, 1), Mop::Read(5), Mop::Read(3)];
        let keys = touched(&mops);
        assert_eq!(keys, vec![3, 5]);
        assert_eq!(key(3), b64_encode(b"txn/3"));
        assert_eq!(
            read_body(&keys),
            json!({"success": [
                {"request_range": {"key": key(3)}},
                {"request_range": {"key": key(5)}},
            ]})
        );
    }

    #[test]
    fn the_read_answer_gives_values_and_revisions() {
        let body = json!({
            "header": {"revision": "9"},
            "succeeded": true,
            "responses": [
                {"response_range": {"header": {"revision": "9"}, "kvs": [
                    {"key": key(3), "value": val("[1,2]"), "mod_revision": "7", "create_revision": "4", "version": "2"}
                ], "count": "1"}},
                {"response_range": {"header": {"revision": "9"}}},
            ]
        })
        .to_string();
        let got = parse_read_answer(200, body.as_bytes(), &[3, 5]).expect("parses");
        assert_eq!(
            got,
            vec![
                Stored {
                    value: Some(json!([1, 2])),
                    mod_revision: 7
                },
                Stored {
                    value: None,
                    mod_revision: 0
                },
            ]
        );
        // Anything wrong in the read step is a fail: nothing was written.
        for (status, body) in [
            (
                503,
                r#"{"error":"etcdserver: request timed out","code":14}"#.to_string(),
            ),
            (200, r#"{"header":{}, "responses": []}"#.to_string()),
            (200, "not json".to_string()),
            (
                200,
                json!({"header": {}, "responses": [
                    {"response_range": {"kvs": [{"value": val("garbage{"), "mod_revision": "2"}]}},
                    {"response_range": {}},
                ]})
                .to_string(),
            ),
        ] {
            let c = parse_read_answer(status, body.as_bytes(), &[3, 5]).expect_err(&body);
            assert_eq!(c.kind, CompletionKind::Fail, "{body}");
        }
    }

    #[test]
    fn reads_see_the_snapshot_and_the_transaction_s_own_writes() {
        let mops = [
            Mop::Read(3),
            Mop::Append(3, 4),
            Mop::Read(3),
            Mop::Append(5, 1),
            Mop::Read(5),
        ];
        let keys = touched(&mops);
        let snap = [
            Stored {
                value: Some(json!([1, 2])),
                mod_revision: 7,
            },
            Stored {
                value: None,
                mod_revision: 0,
            },
        ];
        let p = plan(&mops, &keys, &snap).expect("plans");
        assert_eq!(
            p.completed,
            json!([
                ["r", 3, [1, 2]],
                ["append", 3, 4],
                ["r", 3, [1, 2, 4]],
                ["append", 5, 1],
                ["r", 5, [1]]
            ])
        );
        assert_eq!(p.writes, vec![(3, json!([1, 2, 4])), (5, json!([1]))]);
        assert_eq!(
            commit_body(&keys, &snap, &p.writes),
            json!({
                "compare": [
                    {"key": key(3), "target": "MOD", "result": "EQUAL", "mod_revision": "7"},
                    {"key": key(5), "target": "CREATE", "result": "EQUAL", "create_revision": "0"},
                ],
                "success": [
                    {"request_put": {"key": key(3), "value": val("[1,2,4]")}},
                    {"request_put": {"key": key(5), "value": val("[1]")}},
                ],
            })
        );
        // rw-register: the last write wins, reads see it.
        let mops = [Mop::Write(1, 5), Mop::Read(1), Mop::Write(1, 6)];
        let p = plan(
            &mops,
            &[1],
            &[Stored {
                value: Some(json!(2)),
                mod_revision: 3,
            }],
        )
        .expect("plans");
        assert_eq!(p.completed, json!([["w", 1, 5], ["r", 1, 5], ["w", 1, 6]]));
        assert_eq!(p.writes, vec![(1, json!(6))]);
        // An append to a register aborts before anything is sent.
        let c = plan(
            &[Mop::Append(1, 9)],
            &[1],
            &[Stored {
                value: Some(json!(2)),
                mod_revision: 3,
            }],
        )
        .expect_err("not a list");
        assert_eq!(
            (c.kind, c.error.as_deref()),
            (CompletionKind::Fail, Some("not-a-list"))
        );
    }

    #[test]
    fn the_commit_answer_decides_ok_fail_or_info() {
        let op = ClientOp::Txn(vec![Mop::Append(3, 4)]);
        let completed = json!([["append", 3, 4]]);
        let c = map_commit_answer(
            200,
            br#"{"header":{"revision":"10"},"succeeded":true,"responses":[{"response_put":{"header":{}}}]}"#,
            &op,
            &completed,
        );
        assert_eq!((c.kind, c.value), (CompletionKind::Ok, completed.clone()));
        // The gateway leaves false out: a compare failed, nothing applied.
        let c = map_commit_answer(200, br#"{"header":{"revision":"10"}}"#, &op, &completed);
        assert_eq!(
            (c.kind, c.error.as_deref()),
            (CompletionKind::Fail, Some("conflict"))
        );
        let c = map_commit_answer(
            503,
            br#"{"error":"etcdserver: request timed out","code":14}"#,
            &op,
            &completed,
        );
        assert_eq!(c.kind, CompletionKind::Info, "may be applied later");
        let c = map_commit_answer(
            503,
            br#"{"error":"etcdserver: no leader","code":14}"#,
            &op,
            &completed,
        );
        assert_eq!(c.kind, CompletionKind::Fail, "refused before proposing");
        for body in [
            &b"<html>"[..],
            br#"{"header":{},"succeeded":"yes"}"#,
            br#"{}"#,
        ] {
            assert_eq!(
                map_commit_answer(200, body, &op, &completed).kind,
                CompletionKind::Info
            );
        }
    }

    #[test]
    fn a_read_only_transaction_completes_from_the_snapshot() {
        let mops = [Mop::Read(2), Mop::Read(2)];
        let c = read_only(
            &mops,
            &[2],
            &[Stored {
                value: Some(json!([7])),
                mod_revision: 5,
            }],
        );
        assert_eq!(
            (c.kind, c.value),
            (CompletionKind::Ok, json!([["r", 2, [7]], ["r", 2, [7]]]))
        );
    }
}
