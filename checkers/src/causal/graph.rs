//! A small directed graph over operations: topological order (Kahn) and, when there is
//! none, a shortest cycle for the witness.

use std::collections::VecDeque;

/// Directed graph in compressed sparse row form.
#[derive(Debug, Clone)]
pub(crate) struct Graph {
    start: Vec<u32>,
    succ: Vec<u32>,
}

impl Graph {
    /// Builds a graph of `n` nodes from an edge list.
    pub fn new(n: usize, edges: &[(u32, u32)]) -> Graph {
        let mut start = vec![0u32; n + 1];
        for &(a, _) in edges {
            start[a as usize + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut succ = vec![0u32; edges.len()];
        for &(a, b) in edges {
            succ[fill[a as usize] as usize] = b;
            fill[a as usize] += 1;
        }
        Graph { start, succ }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.start.len() - 1
    }

    /// Successors of `a`.
    pub fn succ(&self, a: u32) -> &[u32] {
        &self.succ[self.start[a as usize] as usize..self.start[a as usize + 1] as usize]
    }

    /// A topological order, or the nodes left on cycles when there is none.
    pub fn topo(&self) -> Result<Vec<u32>, Vec<bool>> {
        let n = self.len();
        let mut indeg = vec![0u32; n];
        for &b in &self.succ {
            indeg[b as usize] += 1;
        }
        let mut order: Vec<u32> = (0..n as u32).filter(|&a| indeg[a as usize] == 0).collect();
        let mut head = 0;
        while head < order.len() {
            let a = order[head];
            head += 1;
            for &b in self.succ(a) {
                indeg[b as usize] -= 1;
                if indeg[b as usize] == 0 {
                    order.push(b);
                }
            }
        }
        if order.len() == n {
            Ok(order)
        } else {
            Err(indeg.iter().map(|&d| d > 0).collect())
        }
    }

    /// A short cycle among the `stuck` nodes (those [`Graph::topo`] left over): nodes
    /// that cannot reach a cycle are trimmed, a node on a cycle is found by walking
    /// successors, and the shortest cycle through it (and through a few nodes of that
    /// cycle) is kept. Nodes in cycle order; empty if `stuck` holds no cycle.
    pub fn shortest_cycle(&self, stuck: &[bool]) -> Vec<u32> {
        let n = self.len();
        let mut live = stuck.to_vec();
        let mut outdeg = vec![0u32; n];
        let mut preds: Vec<Vec<u32>> = vec![Vec::new(); n];
        for a in 0..n as u32 {
            if !live[a as usize] {
                continue;
            }
            for &b in self.succ(a) {
                if live[b as usize] {
                    outdeg[a as usize] += 1;
                    preds[b as usize].push(a);
                }
            }
        }
        let mut dead: Vec<u32> = (0..n as u32)
            .filter(|&a| live[a as usize] && outdeg[a as usize] == 0)
            .collect();
        while let Some(b) = dead.pop() {
            live[b as usize] = false;
            for &a in &preds[b as usize] {
                outdeg[a as usize] -= 1;
                if outdeg[a as usize] == 0 && live[a as usize] {
                    dead.push(a);
                }
            }
        }
        let Some(mut x) = (0..n as u32).find(|&a| live[a as usize]) else {
            return Vec::new();
        };
        let mut seen = vec![false; n];
        while !seen[x as usize] {
            seen[x as usize] = true;
            match self.succ(x).iter().find(|&&y| live[y as usize]) {
                Some(&y) => x = y,
                None => return Vec::new(),
            }
        }
        let mut best = self.cycle_through(x, &live).unwrap_or_default();
        for &a in best.clone().iter().skip(1).take(8) {
            if let Some(c) = self.cycle_through(a, &live) {
                if c.len() < best.len() {
                    best = c;
                }
            }
        }
        best
    }

    /// The shortest cycle through `a` inside `stuck`, by breadth-first search.
    fn cycle_through(&self, a: u32, stuck: &[bool]) -> Option<Vec<u32>> {
        let mut parent: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
        let mut queue = VecDeque::from([a]);
        while let Some(x) = queue.pop_front() {
            for &y in self.succ(x) {
                if !stuck[y as usize] {
                    continue;
                }
                if y == a {
                    let mut path = vec![x];
                    let mut cur = x;
                    while cur != a {
                        cur = parent[&cur];
                        path.push(cur);
                    }
                    path.reverse();
                    return Some(path);
                }
                if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(y) {
                    e.insert(x);
                    queue.push_back(y);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_a_dag_and_finds_the_short_cycle() {
        let g = Graph::new(4, &[(0, 1), (1, 2), (0, 3), (3, 2)]);
        let order = g.topo().unwrap_or_default();
        assert_eq!(order.len(), 4);
        let pos = |x: u32| order.iter().position(|&y| y == x);
        assert!(pos(0) < pos(1) && pos(1) < pos(2) && pos(3) < pos(2));

        // 0 -> 1 -> 2 -> 0 and a longer loop 0 -> 3 -> 4 -> 5 -> 0.
        let g = Graph::new(6, &[(0, 1), (1, 2), (2, 0), (0, 3), (3, 4), (4, 5), (5, 0)]);
        let stuck = g.topo().err().unwrap_or_default();
        assert!(stuck.iter().all(|&s| s));
        let c = g.shortest_cycle(&stuck);
        assert_eq!(c, vec![0, 1, 2]);
    }
}
