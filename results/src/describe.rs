//! Faults in words: a partition's grudge map as the sides it makes
//! (`{n1,n2} | {n3,n4,n5} (majority)`, `n3 isolated`, `bridge through n3`, `ring`), clock
//! offsets with units (`n2 +26 ms, n3 +2 min 7.834 s`), packet faults with their rates.
//! Pure functions of the recorded value; `None` when a value has another shape (the
//! report then shows it as recorded).

use faultline_history::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The fault `kind` (normalised: `partition`, `clock_bump`, ...) with value `v`, in words.
pub fn describe_fault(kind: &str, v: &Value) -> Option<String> {
    match kind {
        "partition" => describe_partition(v),
        "clock_bump" => clock_offsets(v),
        "clock_strobe" => clock_strobes(v),
        "kill" | "start" | "pause" | "resume" | "clock_reset" | "packet_heal" => node_list(v),
        "loss" => packet(v, "percent", |p| format!("drop {p}% of packets")),
        "delay" => packet(v, "ms", |ms| format!("delay packets by {ms} ms")),
        "rate" => packet(v, "kbit", |k| format!("send at most {k} kbit/s")),
        _ => None,
    }
}

fn node_list(v: &Value) -> Option<String> {
    let nodes: Vec<&str> = v.as_array()?.iter().filter_map(Value::as_str).collect();
    (!nodes.is_empty()).then(|| nodes.join(", "))
}

fn packet(v: &Value, field: &str, what: impl Fn(&str) -> String) -> Option<String> {
    let nodes = node_list(v.get("nodes")?)?;
    let amount = v.get(field)?;
    let amount = match amount {
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    Some(format!("{nodes}: {}", what(&amount)))
}

/// A signed number of milliseconds with a unit: `+26 ms`, `-1.500 s`, `+2 min 7.834 s`.
pub fn offset_ms(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "+" };
    let a = ms.unsigned_abs();
    if a < 1_000 {
        format!("{sign}{a} ms")
    } else if a < 60_000 {
        format!("{sign}{}.{:03} s", a / 1_000, a % 1_000)
    } else if a < 3_600_000 {
        let s = a % 60_000;
        format!("{sign}{} min {}.{:03} s", a / 60_000, s / 1_000, s % 1_000)
    } else {
        let m = a % 3_600_000;
        format!("{sign}{} h {} min", a / 3_600_000, m / 60_000)
    }
}

fn clock_offsets(v: &Value) -> Option<String> {
    let map = v.as_object()?;
    let mut parts = Vec::new();
    for (node, ms) in map {
        parts.push(format!("{node} {}", offset_ms(ms.as_i64()?)));
    }
    (!parts.is_empty()).then(|| format!("clock moved: {}", parts.join(", ")))
}

fn clock_strobes(v: &Value) -> Option<String> {
    let map = v.as_object()?;
    let mut parts = Vec::new();
    for (node, s) in map {
        let delta = s.get("delta_ms")?.as_i64()?;
        let period = s.get("period_ms")?.as_u64()?;
        let duration = s.get("duration_ms")?.as_u64()?;
        parts.push(format!(
            "{node} flips {} every {} ms for {}",
            offset_ms(delta),
            period,
            offset_ms(duration as i64).trim_start_matches('+')
        ));
    }
    (!parts.is_empty()).then(|| format!("clock strobe: {}", parts.join("; ")))
}

/// A grudge (`{"n1": ["n3"], "n3": ["n1"]}`: each node drops packets from the nodes
/// listed) as the sides it makes.
pub fn describe_partition(v: &Value) -> Option<String> {
    let map = v.as_object()?;
    let mut drops: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut nodes: BTreeSet<String> = BTreeSet::new();
    for (node, from) in map {
        nodes.insert(node.clone());
        let set = drops.entry(node.clone()).or_default();
        for f in from.as_array()? {
            let f = f.as_str()?;
            nodes.insert(f.to_string());
            set.insert(f.to_string());
        }
    }
    Some(describe_grudge(&nodes, &drops))
}

/// The sides of a grudge over `nodes`, in words.
pub fn describe_grudge(
    nodes: &BTreeSet<String>,
    drops: &BTreeMap<String, BTreeSet<String>>,
) -> String {
    grudge_words(nodes, drops, true)
}

fn grudge_words(
    nodes: &BTreeSet<String>,
    drops: &BTreeMap<String, BTreeSet<String>>,
    top: bool,
) -> String {
    let cut = |a: &str, b: &str| {
        drops.get(a).is_some_and(|s| s.contains(b)) || drops.get(b).is_some_and(|s| s.contains(a))
    };
    let list: Vec<&str> = nodes.iter().map(String::as_str).collect();
    let n = list.len();
    let mut one_way: Vec<String> = Vec::new();
    for (a, from) in drops {
        for b in from {
            if !drops.get(b).is_some_and(|s| s.contains(a)) {
                one_way.push(format!("{a} drops {b}'s packets but not the reverse"));
            }
        }
    }
    let suffix = if one_way.is_empty() {
        String::new()
    } else {
        format!(" (one-way: {})", one_way.join("; "))
    };
    if list
        .iter()
        .all(|a| list.iter().all(|b| a == b || !cut(a, b)))
    {
        return format!("no partition: every node reaches every other{suffix}");
    }
    let neighbours = |a: &str| -> Vec<&str> {
        list.iter()
            .copied()
            .filter(|b| *b != a && !cut(a, b))
            .collect()
    };
    // Connected components of the "can talk" graph.
    let mut comps: Vec<Vec<&str>> = Vec::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for &start in &list {
        if seen.contains(start) {
            continue;
        }
        let mut comp = vec![start];
        seen.insert(start);
        let mut i = 0;
        while i < comp.len() {
            for b in neighbours(comp[i]) {
                if seen.insert(b) {
                    comp.push(b);
                }
            }
            i += 1;
        }
        comp.sort_unstable();
        comps.push(comp);
    }
    let cliques = comps
        .iter()
        .all(|c| c.iter().all(|a| c.iter().all(|b| a == b || !cut(a, b))));
    let side = |c: &[&str]| format!("{{{}}}", c.join(","));
    if cliques && comps.len() > 1 {
        comps.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        let sides: Vec<String> = comps.iter().map(|c| side(c)).collect();
        let majority = if !top {
            ""
        } else if comps.first().is_some_and(|c| c.len() * 2 > n) {
            " — the first side holds a majority"
        } else {
            " — no side holds a majority"
        };
        let lone: Vec<&str> = comps
            .iter()
            .filter(|c| c.len() == 1)
            .map(|c| c[0])
            .collect();
        let head = match (lone.len(), comps.len()) {
            (1, 2) => format!("{} isolated: ", lone[0]),
            _ => String::new(),
        };
        return format!("{head}{}{majority}{suffix}", sides.join(" | "));
    }
    // A bridge: nodes that reach everyone while the rest split into separate groups.
    let hubs: Vec<&str> = list
        .iter()
        .copied()
        .filter(|a| neighbours(a).len() == n - 1)
        .collect();
    if !hubs.is_empty() && hubs.len() < n {
        let rest: BTreeSet<String> = list
            .iter()
            .filter(|a| !hubs.contains(a))
            .map(|a| a.to_string())
            .collect();
        let inner = grudge_words(&rest, drops, false);
        return format!(
            "bridge through {}: {inner}, each side reaching the other only through {}",
            hubs.join(","),
            if hubs.len() == 1 { "it" } else { "them" }
        );
    }
    let degrees: BTreeSet<usize> = list.iter().map(|a| neighbours(a).len()).collect();
    if degrees.len() == 1 && n >= 3 {
        let d = degrees.iter().next().copied().unwrap_or(0);
        let seen_by = if (d + 1) * 2 > n {
            "each node sees a majority, but a different one"
        } else {
            "no node sees a majority"
        };
        let links: Vec<String> = list
            .iter()
            .map(|a| format!("{a}↔{}", neighbours(a).join(",")))
            .collect();
        return format!("ring: {seen_by} ({}){suffix}", links.join("; "));
    }
    let links: Vec<String> = list
        .iter()
        .map(|a| format!("{a} reaches {}", or_none(&neighbours(a))))
        .collect();
    format!("{}{suffix}", links.join("; "))
}

fn or_none(v: &[&str]) -> String {
    if v.is_empty() {
        "no one".into()
    } else {
        v.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The grudge that cuts `sides` from each other completely.
    fn halves(sides: &[&[&str]]) -> Value {
        let mut m = serde_json::Map::new();
        for (i, s) in sides.iter().enumerate() {
            let others: Vec<&str> = sides
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .flat_map(|(_, o)| o.iter().copied())
                .collect();
            for n in *s {
                m.insert(n.to_string(), json!(others));
            }
        }
        Value::Object(m)
    }

    #[test]
    fn partitions_in_words() {
        let cases: Vec<(Value, &str)> = vec![
            (
                halves(&[&["n1", "n2"], &["n3", "n4", "n5"]]),
                "{n3,n4,n5} | {n1,n2} — the first side holds a majority",
            ),
            (
                halves(&[&["n3"], &["n1", "n2", "n4", "n5"]]),
                "n3 isolated: {n1,n2,n4,n5} | {n3} — the first side holds a majority",
            ),
            (
                halves(&[&["n1", "n2"], &["n3", "n4"]]),
                "{n1,n2} | {n3,n4} — no side holds a majority",
            ),
            // n3 talks to everyone; {n1,n2} and {n4,n5} cannot talk.
            (
                json!({"n1": ["n4", "n5"], "n2": ["n4", "n5"], "n3": [], "n4": ["n1", "n2"], "n5": ["n1", "n2"]}),
                "bridge through n3: {n1,n2} | {n4,n5}, each side reaching the other only through it",
            ),
            (
                json!({"n1": ["n2"]}),
                "{n1} | {n2} — no side holds a majority (one-way: n1 drops n2's packets but not the reverse)",
            ),
            (json!({"n1": [], "n2": []}), "no partition: every node reaches every other"),
        ];
        for (v, want) in cases {
            assert_eq!(describe_partition(&v).as_deref(), Some(want), "{v}");
        }
        // Jepsen's majorities ring on 5 nodes: each node cut from the two across.
        let ring = json!({
            "n1": ["n3", "n4"], "n2": ["n4", "n5"], "n3": ["n5", "n1"],
            "n4": ["n1", "n2"], "n5": ["n2", "n3"]
        });
        let text = describe_partition(&ring).unwrap_or_default();
        assert!(
            text.starts_with("ring: each node sees a majority, but a different one"),
            "{text}"
        );
        assert_eq!(describe_partition(&json!([1])), None);
    }

    #[test]
    fn clock_offsets_have_units() {
        let v = json!({"n2": 26, "n3": 127834, "n5": -86, "n1": -1500, "n4": 7_200_000});
        assert_eq!(
            describe_fault("clock_bump", &v).as_deref(),
            Some(
                "clock moved: n1 -1.500 s, n2 +26 ms, n3 +2 min 7.834 s, n4 +2 h 0 min, n5 -86 ms"
            )
        );
        let s = json!({"n1": {"delta_ms": 200, "period_ms": 10, "duration_ms": 5000}});
        assert_eq!(
            describe_fault("clock_strobe", &s).as_deref(),
            Some("clock strobe: n1 flips +200 ms every 10 ms for 5.000 s")
        );
        assert_eq!(offset_ms(0), "+0 ms");
    }

    #[test]
    fn node_and_packet_faults() {
        assert_eq!(
            describe_fault("kill", &json!(["n1", "n3"])).as_deref(),
            Some("n1, n3")
        );
        assert_eq!(
            describe_fault("loss", &json!({"nodes": ["n2"], "percent": 20})).as_deref(),
            Some("n2: drop 20% of packets")
        );
        assert_eq!(describe_fault("heal", &Value::Null), None);
        assert_eq!(describe_fault("clock_bump", &json!({"n1": "x"})), None);
    }
}
