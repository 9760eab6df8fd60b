//! Shrinking a failing set of operations to a 1-minimal one (delta debugging, "ddmin").
//!
//! The caller provides `still_fails`, which re-runs the same checker on a candidate, and
//! `close`, which removes from a candidate whatever its removals left without support (for
//! registers: reads of a value no remaining operation writes), so that shrinking never
//! manufactures a violation of its own. Removal therefore works on clusters: an operation
//! together with everything that depends on it.
//!
//! The result is 1-minimal (removing any single remaining item, with its dependants, makes
//! the candidate pass) only when the last pass over single items completed before the
//! deadline; the result says which.

use std::time::Instant;

/// A shrunk set of items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shrunk<T> {
    /// The items left; `still_fails` held for them.
    pub items: Vec<T>,
    /// Whether removing any single item (with its dependants) was checked to make it pass.
    pub one_minimal: bool,
    /// How many candidates were checked.
    pub checks: usize,
}

/// Shrinks `items` (which must fail, and be closed: `close(items) == items`) while
/// `still_fails` holds, stopping at `deadline`.
///
/// Chunks of the current set are removed in turn, halving the chunk size after a pass that
/// removed nothing. A removal that keeps the failure is kept and the pass goes on from the
/// same position (it does not start over, which would check the chunks before it again),
/// so a pass costs one check per chunk; a set of `n` items shrunk to `k` costs about
/// `2n + k log n` checks instead of ddmin's quadratic worst case. The result is
/// 1-minimal once a pass with single items removed nothing.
pub fn shrink<T: Clone>(
    items: Vec<T>,
    mut close: impl FnMut(Vec<T>) -> Vec<T>,
    mut still_fails: impl FnMut(&[T]) -> bool,
    deadline: Option<Instant>,
) -> Shrunk<T> {
    let mut cur = items;
    let mut checks = 0;
    let late = || deadline.is_some_and(|d| Instant::now() >= d);
    let mut chunk = cur.len().div_ceil(2).max(1);
    loop {
        if cur.len() < 2 {
            return Shrunk {
                items: cur,
                one_minimal: true,
                checks,
            };
        }
        chunk = chunk.min(cur.len().div_ceil(2)).max(1);
        let mut reduced = false;
        let mut start = 0;
        while start < cur.len() {
            if late() {
                return Shrunk {
                    items: cur,
                    one_minimal: false,
                    checks,
                };
            }
            let end = (start + chunk).min(cur.len());
            let cand: Vec<T> = cur[..start].iter().chain(&cur[end..]).cloned().collect();
            let cand = close(cand);
            if !cand.is_empty() && cand.len() < cur.len() {
                checks += 1;
                if still_fails(&cand) {
                    // Go on from the same position. (Where the closure also removed items
                    // before it, some items are skipped in this pass; the pass that
                    // follows, since this one removed something, sees them.)
                    cur = cand;
                    reduced = true;
                    start = start.min(cur.len());
                    continue;
                }
            }
            start = end;
        }
        if !reduced {
            if chunk == 1 {
                return Shrunk {
                    items: cur,
                    one_minimal: true,
                    checks,
                };
            }
            chunk = chunk.div_ceil(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_failing_pair() {
        // Fails iff both 3 and 7 are present.
        let items: Vec<u32> = (0..20).collect();
        let r = shrink(items, |c| c, |c| c.contains(&3) && c.contains(&7), None);
        assert_eq!(r.items, vec![3, 7]);
        assert!(r.one_minimal);
    }

    #[test]
    fn close_removes_dependants() {
        // 10 depends on 2 (removing 2 removes 10); fails iff 10 and 5 present.
        let items: Vec<u32> = (0..12).collect();
        let r = shrink(
            items,
            |c: Vec<u32>| {
                let has2 = c.contains(&2);
                c.into_iter().filter(|&x| x != 10 || has2).collect()
            },
            |c| c.contains(&10) && c.contains(&5),
            None,
        );
        assert_eq!(r.items, vec![2, 5, 10]);
        assert!(r.one_minimal);
    }

    #[test]
    fn a_past_deadline_is_not_minimal() {
        let items: Vec<u32> = (0..8).collect();
        let past = Instant::now();
        let r = shrink(items.clone(), |c| c, |_| true, Some(past));
        assert_eq!(r.items, items);
        assert!(!r.one_minimal);
    }
}
