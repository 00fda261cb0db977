//! The dependency graph between committed transactions (`ww`, `wr` and `rw`
//! edges from each key's version order) and the search for the cycles
//! snapshot isolation forbids: G0, G1c and G-single; under serializable,
//! also G2 (every other cycle).

use std::collections::{HashMap, HashSet, VecDeque};

use super::checker::Checker;
use super::{Anomaly, CycleKind, Dep, Step};
use crate::history::model::OpKind;

/// An edge of the dependency graph, between operation indexes.
pub(super) struct Edge {
    from: usize,
    to: usize,
    dep: Dep,
    key: u64,
}

impl Checker<'_> {
    /// Add a `dep` edge `from -> to` for `key`, unless a loop or already present.
    fn edge(&mut self, from: usize, to: usize, dep: Dep, key: u64) {
        if from != to && self.edge_set.insert((from, to, dep)) {
            match dep {
                Dep::WW => self.stats.ww_edges += 1,
                Dep::WR => self.stats.wr_edges += 1,
                Dep::RW => self.stats.rw_edges += 1,
            }
            self.edges.push(Edge { from, to, dep, key });
        }
    }

    /// The dependency graph from each key's version order.
    pub(super) fn graph(&mut self) {
        let ops = self.ops;
        let longest: Vec<(u64, &[u64])> = self.longest.iter().map(|(&k, &(_, l))| (k, l)).collect();
        for (k, long) in longest {
            // Writer runs of the version order; run_of[p] = run index of position p.
            let mut runs: Vec<usize> = Vec::new();
            let mut run_of: Vec<Option<usize>> = Vec::with_capacity(long.len());
            for v in long {
                match self.writer.get(&(k, *v)) {
                    Some(&w) if ops[w].kind != OpKind::Fail => {
                        if runs.last() != Some(&w) {
                            runs.push(w);
                        }
                        run_of.push(Some(runs.len() - 1));
                    }
                    _ => run_of.push(None),
                }
            }
            for pair in runs.windows(2) {
                self.edge(pair[0], pair[1], Dep::WW, k);
            }
            // Committed appenders never observed: after every observed
            // version. (Also an `Info` op that a read of another key proves
            // committed: before 2026-12-07 only `Ok` ones, so a read that
            // saw one of its appends and missed another was no G-single.)
            let present: HashSet<u64> = long.iter().copied().collect();
            let unseen: Vec<usize> = (self.appenders.get(&k).cloned().unwrap_or_default().into_iter())
                .filter(|&t| self.committed(t))
                .filter(|&t| {
                    self.appends[t]
                        .get(&k)
                        .is_some_and(|m| m.iter().any(|v| !present.contains(v)))
                })
                .collect();
            if let Some(&last) = runs.last() {
                for &u in &unseen {
                    self.edge(last, u, Dep::WW, k);
                }
            }
            for &(r, m) in &self.reads.get(&k).cloned().unwrap_or_default() {
                let l = self.list((r, m));
                // The version read: the list without the reader's own appends.
                let mut n = l.len();
                while n > 0 && self.writer.get(&(k, l[n - 1])) == Some(&r) {
                    n -= 1;
                }
                let run = if n == 0 {
                    None
                } else {
                    run_of.get(n - 1).copied().flatten()
                };
                if n > 0 && run.is_none() {
                    continue; // ends in an unknown or aborted value: reported already
                }
                if let Some(j) = run {
                    self.edge(runs[j], r, Dep::WR, k);
                }
                let next = run.map_or(0, |j| j + 1);
                if let Some(&w) = runs.get(next) {
                    if w != r {
                        self.edge(r, w, Dep::RW, k);
                    }
                } else {
                    for &u in &unseen {
                        self.edge(r, u, Dep::RW, k);
                    }
                }
            }
        }
    }

    /// Search the graph for G0, G1c and G-single cycles and count the
    /// remaining (G2) components; under serializable, report one G2 cycle
    /// from each of those components too.
    pub(super) fn cycles(&mut self) {
        let n = self.ops.len();
        let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (e, edge) in self.edges.iter().enumerate() {
            out[edge.from].push(e);
        }
        let succ = |allow: &dyn Fn(Dep) -> bool| -> Vec<Vec<usize>> {
            out.iter()
                .map(|es| {
                    es.iter()
                        .filter(|&&e| allow(self.edges[e].dep))
                        .map(|&e| self.edges[e].to)
                        .collect()
                })
                .collect()
        };
        let (full_comp, full) = tarjan(&succ(&|_| true));
        let (_, ww) = tarjan(&succ(&|d| d == Dep::WW));
        let (wwwr_comp, wwwr) = tarjan(&succ(&|d| d != Dep::RW));
        let mut forbidden_comps = HashSet::new();
        // G0: any ww-only cycle.
        for c in ww.iter().filter(|c| c.len() > 1) {
            let member: HashSet<usize> = c.iter().copied().collect();
            let allow = |e: &Edge| e.dep == Dep::WW && member.contains(&e.to);
            if let Some(cycle) = self.cycle_through(&out, c[0], &allow) {
                forbidden_comps.insert(full_comp[c[0]]);
                self.report_cycle(CycleKind::G0, cycle);
            }
        }
        // G1c: a ww/wr cycle through a wr edge.
        for (ci, c) in wwwr.iter().enumerate().filter(|(_, c)| c.len() > 1) {
            let member: HashSet<usize> = c.iter().copied().collect();
            let wr = c.iter().flat_map(|&v| &out[v]).copied().find(|&e| {
                let e = &self.edges[e];
                e.dep == Dep::WR && wwwr_comp[e.to] == ci
            });
            let Some(wr) = wr else { continue };
            let (from, to) = (self.edges[wr].from, self.edges[wr].to);
            let allow = |e: &Edge| e.dep != Dep::RW && member.contains(&e.to);
            if let Some(mut path) = self.path(&out, to, from, &allow) {
                path.insert(0, wr);
                forbidden_comps.insert(full_comp[from]);
                self.report_cycle(CycleKind::G1c, path);
            }
        }
        // G-single: an rw edge u -> v closed by a ww/wr path v ~> u. Tarjan emits
        // components in reverse topological order, so a path v ~> u needs
        // wwwr_comp[v] >= wwwr_comp[u]; the search stays in that band.
        let mut single_comps = HashSet::new();
        for e in 0..self.edges.len() {
            let Edge {
                from: u, to: v, dep, ..
            } = self.edges[e];
            let c = full_comp[u];
            if dep != Dep::RW || full_comp[v] != c || single_comps.contains(&c) || wwwr_comp[v] < wwwr_comp[u] {
                continue;
            }
            let floor = wwwr_comp[u];
            let allow = |x: &Edge| x.dep != Dep::RW && full_comp[x.to] == c && wwwr_comp[x.to] >= floor;
            if let Some(mut path) = self.path(&out, v, u, &allow) {
                path.insert(0, e);
                single_comps.insert(c);
                self.report_cycle(CycleKind::GSingle, path);
            }
        }
        let g2: Vec<usize> = (full.iter().enumerate())
            .filter(|(ci, c)| c.len() > 1 && !forbidden_comps.contains(ci) && !single_comps.contains(ci))
            .map(|(ci, _)| ci)
            .collect();
        self.stats.g2_components = g2.len();
        if self.serializable {
            for ci in g2 {
                let start = full[ci][0];
                let allow = |e: &Edge| full_comp[e.to] == ci;
                // A component of two or more nodes has a cycle through each.
                if let Some(cycle) = self.cycle_through(&out, start, &allow) {
                    self.report_cycle(CycleKind::G2, cycle);
                }
            }
        }
    }

    /// A cycle through `start` using allowed edges, as edge ids.
    fn cycle_through(&self, out: &[Vec<usize>], start: usize, allow: &dyn Fn(&Edge) -> bool) -> Option<Vec<usize>> {
        for &e in &out[start] {
            if allow(&self.edges[e]) {
                if let Some(mut p) = self.path(out, self.edges[e].to, start, allow) {
                    p.insert(0, e);
                    return Some(p);
                }
            }
        }
        None
    }

    /// Shortest path `from ~> to` over allowed edges (empty if equal), as edge ids.
    fn path(&self, out: &[Vec<usize>], from: usize, to: usize, allow: &dyn Fn(&Edge) -> bool) -> Option<Vec<usize>> {
        let mut parent: HashMap<usize, usize> = HashMap::new(); // node -> edge into it
        let mut queue = VecDeque::from([from]);
        let mut seen = HashSet::from([from]);
        while let Some(x) = queue.pop_front() {
            if x == to {
                let mut path = Vec::new();
                let mut at = to;
                while at != from {
                    let e = parent[&at];
                    path.push(e);
                    at = self.edges[e].from;
                }
                path.reverse();
                return Some(path);
            }
            for &e in &out[x] {
                let edge = &self.edges[e];
                if allow(edge) && seen.insert(edge.to) {
                    parent.insert(edge.to, e);
                    queue.push_back(edge.to);
                }
            }
        }
        None
    }

    /// Report the cycle made of `edges` (edge ids) as a `kind` anomaly.
    fn report_cycle(&mut self, kind: CycleKind, edges: Vec<usize>) {
        let steps = edges
            .into_iter()
            .map(|e| {
                let e = &self.edges[e];
                Step {
                    from: self.id(e.from),
                    dep: e.dep,
                    key: e.key,
                    to: self.id(e.to),
                }
            })
            .collect();
        self.found.push(Anomaly::Cycle { kind, steps });
    }
}

/// Tarjan's strongly connected components, iteratively. Returns each node's
/// component and the components, in reverse topological order (an edge
/// between components goes from a later one to an earlier one).
pub(super) fn tarjan(succ: &[Vec<usize>]) -> (Vec<usize>, Vec<Vec<usize>>) {
    const UNSEEN: usize = usize::MAX;
    let n = succ.len();
    let (mut index, mut low, mut on) = (vec![UNSEEN; n], vec![0; n], vec![false; n]);
    let (mut comp, mut comps) = (vec![UNSEEN; n], Vec::new());
    let (mut stack, mut call, mut next) = (Vec::new(), Vec::<(usize, usize)>::new(), 0);
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on[root] = true;
        call.push((root, 0));
        while let Some(&(v, i)) = call.last() {
            if let Some(&w) = succ[v].get(i) {
                call.last_mut().expect("non-empty").1 += 1;
                if index[w] == UNSEEN {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on[w] = true;
                    call.push((w, 0));
                } else if on[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            call.pop();
            if let Some(&(p, _)) = call.last() {
                low[p] = low[p].min(low[v]);
            }
            if low[v] == index[v] {
                let mut c = Vec::new();
                loop {
                    let w = stack.pop().expect("v is on the stack");
                    on[w] = false;
                    comp[w] = comps.len();
                    c.push(w);
                    if w == v {
                        break;
                    }
                }
                comps.push(c);
            }
        }
    }
    (comp, comps)
}
