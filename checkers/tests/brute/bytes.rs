//! Tiny histories decoded from bytes, for the `check_all` fuzz target and its test: every
//! byte string decodes to a well-formed history (so a fuzzer spends its time on the
//! checkers, not on the parser) of at most 9 operations on 1 or 2 keys by up to 3
//! processes, with values 0..=3 (0 is the initial value when the first byte says so),
//! reads of null, info and failed operations, mismatches and operations that never
//! complete.

use super::Semantics;
use faultline_history::{Event, EventType, Value};
use serde_json::json;

/// One planned operation.
struct Op {
    process: u64,
    f: &'static str,
    key: &'static str,
    invoke: Value,
    complete: Value,
    kind: EventType,
    error: Option<&'static str>,
}

fn value(b: u8, nullable: bool) -> Value {
    match b % 5 {
        4 if nullable => Value::Null,
        v => json!(v % 4),
    }
}

/// The history `bytes` stand for, and how to read it.
pub fn history(bytes: &[u8]) -> (Vec<Event>, Semantics) {
    let head = bytes.first().copied().unwrap_or(0);
    let sem = Semantics {
        initial: if head & 1 != 0 { json!(0) } else { Value::Null },
        nil_reads_unknown: head & 2 != 0,
    };
    let go_on_after_info = head & 4 != 0;
    let mut ops: Vec<Op> = Vec::new();
    let mut rest = bytes.get(1..).unwrap_or_default();
    while ops.len() < 9 && rest.len() >= 3 {
        let (a, b, c) = (rest[0], rest[1], rest[2]);
        rest = &rest[3..];
        let process = u64::from(a % 3);
        let key = if a & 0x80 != 0 { "y" } else { "x" };
        let outcome = b % 8;
        let op = match (a / 3) % 3 {
            0 => {
                let v = value(c, false);
                let (kind, error) = match outcome {
                    0..=4 => (EventType::Ok, None),
                    5 | 6 => (EventType::Info, Some("timeout")),
                    _ => (EventType::Fail, Some("unavailable")),
                };
                Op {
                    process,
                    f: "write",
                    key,
                    invoke: v.clone(),
                    complete: v,
                    kind,
                    error,
                }
            }
            1 => {
                let (kind, error, result) = match outcome {
                    0..=5 => (EventType::Ok, None, value(c, true)),
                    6 => (EventType::Info, Some("timeout"), Value::Null),
                    _ => (EventType::Fail, Some("unavailable"), Value::Null),
                };
                Op {
                    process,
                    f: "read",
                    key,
                    invoke: Value::Null,
                    complete: result,
                    kind,
                    error,
                }
            }
            _ => {
                let arg = json!([value(c, true), value(c / 5, false)]);
                let (kind, error) = match outcome {
                    0..=3 => (EventType::Ok, None),
                    4 => (EventType::Info, Some("timeout")),
                    5 | 6 => (EventType::Fail, Some("mismatch")),
                    _ => (EventType::Fail, Some("unavailable")),
                };
                Op {
                    process,
                    f: "cas",
                    key,
                    invoke: arg.clone(),
                    complete: arg,
                    kind,
                    error,
                }
            }
        };
        ops.push(op);
    }
    // Sessions in order of appearance; unless processes go on after info, a process's
    // operations after its first info one are dropped.
    let mut sessions: Vec<Vec<&Op>> = vec![Vec::new(); 3];
    for op in &ops {
        let s = &mut sessions[op.process as usize];
        if go_on_after_info || s.last().is_none_or(|o| o.kind != EventType::Info) {
            s.push(op);
        }
    }
    // Interleave: the remaining bytes pick which process moves next (round robin once
    // they run out); a process's last info operation never completes when its byte is odd.
    let mut choices = rest.iter().copied();
    let mut next = [0usize; 3];
    let mut in_flight = [false; 3];
    let mut events = Vec::new();
    loop {
        let ready: Vec<usize> = (0..3).filter(|&p| next[p] < sessions[p].len()).collect();
        if ready.is_empty() {
            break;
        }
        let pick = choices.next().unwrap_or(events.len() as u8);
        let p = ready[pick as usize % ready.len()];
        let op = sessions[p][next[p]];
        let index = events.len() as u64;
        if in_flight[p] {
            let mut e = Event::client(index, op.process, op.kind, op.f, op.complete.clone())
                .with_key(op.key);
            e.error = op.error.map(str::to_string);
            events.push(e);
            in_flight[p] = false;
            next[p] += 1;
        } else {
            events.push(
                Event::client(
                    index,
                    op.process,
                    EventType::Invoke,
                    op.f,
                    op.invoke.clone(),
                )
                .with_key(op.key),
            );
            in_flight[p] = true;
            let last = next[p] + 1 == sessions[p].len();
            if last && op.kind == EventType::Info && pick % 2 == 1 {
                next[p] += 1;
            }
        }
    }
    (events, sem)
}
