//! Where a replicated round's time goes: timestamps of each log entry's
//! steps on each node, for `cargo run --release -p bwtx-raft --example
//! cluster -- --trace` (`design/replication.md` §9).
//!
//! Off unless [`enable`]d; then every step of every entry appends an
//! [`Event`] (node, log index, [`Step`], nanoseconds since [`enable`]) to
//! one process-wide buffer, which [`take`] empties and [`breakdown`] turns
//! into the round's intervals. Off, a step costs one relaxed atomic load.
//! A tool for measuring, not a log: the buffer holds at most
//! [`MAX_EVENTS`] events (later ones are dropped).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// Events kept at most (about 40 bytes each).
pub const MAX_EVENTS: usize = 4 << 20;

/// A step of a log entry on one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// The proposer calls `client_write` (recorded once the entry's index
    /// is known, with the time of the call).
    Propose,
    /// The log store's `append` is called with the entry.
    Append,
    /// The log writer starts the commit that holds it.
    WriteStart,
    /// The commit is durable and the entry's `IOFlushed` callback fires.
    Durable,
    /// The leader has this node's successful answer to the append that
    /// carried the entry (recorded under the answering node: by the
    /// in-process network when its call returns, by the TCP transport's
    /// reader when it decodes the answer).
    Replied,
    /// The state machine starts applying it.
    ApplyStart,
    /// The state machine applied it.
    Applied,
    /// The proposer's `client_write` returned.
    Answered,
    /// TCP: the leader's transport wrote the append that carried the entry
    /// to this node's connection (recorded under the receiving node).
    Sent,
    /// TCP: this node's transport decoded the append that carried the
    /// entry.
    Received,
}

/// One step of one entry on one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// The node (`u64::MAX`: a store no node tagged).
    pub node: u64,
    /// The entry's log index.
    pub index: u64,
    /// What happened.
    pub step: Step,
    /// Nanoseconds since [`enable`].
    pub at: u64,
}

static ON: AtomicBool = AtomicBool::new(false);
static START: OnceLock<Instant> = OnceLock::new();
static EVENTS: Mutex<Vec<Event>> = Mutex::new(Vec::new());

/// Start recording (and clear what was recorded).
pub fn enable() {
    let _ = START.set(Instant::now());
    lock().clear();
    ON.store(true, Ordering::Release);
}

/// Stop recording.
pub fn disable() {
    ON.store(false, Ordering::Release);
}

/// The events recorded so far, in the order recorded; the buffer is
/// emptied.
pub fn take() -> Vec<Event> {
    std::mem::take(&mut *lock())
}

/// Whether recording is on.
pub(crate) fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// The time now, as events record it (for a step recorded later, as
/// [`Step::Propose`] is).
pub(crate) fn now() -> u64 {
    START.get().map_or(0, |s| s.elapsed().as_nanos() as u64)
}

/// Record `step` of entry `index` on `node` at time `at` ([`now`]).
pub(crate) fn event_at(node: u64, index: u64, step: Step, at: u64) {
    if !on() {
        return;
    }
    let mut events = lock();
    if events.len() < MAX_EVENTS {
        events.push(Event { node, index, step, at });
    }
}

/// Record `step` of entry `index` on `node` now.
pub(crate) fn event(node: u64, index: u64, step: Step) {
    events(node, [index], step);
}

/// Record `step` of each entry of `indexes` on `node` now (one time for
/// all; nothing is iterated while recording is off).
pub(crate) fn events(node: u64, indexes: impl IntoIterator<Item = u64>, step: Step) {
    if !on() {
        return;
    }
    let at = now();
    let mut events = lock();
    for index in indexes {
        if events.len() < MAX_EVENTS {
            events.push(Event { node, index, step, at });
        }
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<Event>> {
    EVENTS.lock().unwrap_or_else(|p| p.into_inner())
}

/// One interval of the round, over the entries that had both ends.
#[derive(Clone, Debug, PartialEq)]
pub struct Interval {
    /// What it measures.
    pub name: &'static str,
    /// Entries measured.
    pub count: usize,
    /// Mean, median and 90th percentile, in microseconds.
    pub mean_us: f64,
    pub median_us: f64,
    pub p90_us: f64,
}

/// The round of each proposed entry, step by step: from the proposer's
/// call to its leader's append, to the first follower's append, that
/// follower's writer starting (a thread wake-up) and its commit and fsync,
/// then to the leader's apply (the follower's answer, the commit index,
/// the state machine's task), the apply, and the answer back to the
/// proposer; with the whole round, the leader's own log write beside it,
/// and the gap from an entry's answer to the next proposal (the clients'
/// turn); over TCP also the replication hop split where the leader's
/// transport wrote the append and where the follower's decoded it. The
/// leader of an entry is the node that proposed it; the follower, the one
/// whose commit was durable first.
pub fn breakdown(events: &[Event]) -> Vec<Interval> {
    // index -> node -> step -> time (the first of each)
    let mut by: BTreeMap<u64, BTreeMap<u64, BTreeMap<Step, u64>>> = BTreeMap::new();
    for e in events {
        by.entry(e.index)
            .or_default()
            .entry(e.node)
            .or_default()
            .entry(e.step)
            .or_insert(e.at);
    }
    const NAMES: [&str; 14] = [
        "propose -> leader's append",
        "leader's append -> follower's append",
        "follower's append -> its writer starts",
        "follower's writer: commit + fsync",
        "follower durable -> leader's apply starts",
        "leader's apply",
        "applied -> proposer answered",
        "round (propose -> answered)",
        "leader's append -> leader durable",
        "answered -> next proposal (clients)",
        "  of which: follower durable -> its answer at the leader",
        "  and: second of 3 copies held -> apply starts",
        "  TCP: leader's append -> written to the socket",
        "  TCP: written -> decoded by the follower",
    ];
    let mut samples: Vec<Vec<u64>> = vec![Vec::new(); NAMES.len()];
    let mut answered_at: Option<u64> = None;
    for nodes in by.values() {
        let Some((&leader, lsteps)) = nodes.iter().find(|(_, s)| s.contains_key(&Step::Propose)) else {
            continue;
        };
        let l = |s: Step| lsteps.get(&s).copied();
        // The follower durable first.
        let follower = nodes
            .iter()
            .filter(|(&n, s)| n != leader && s.contains_key(&Step::Durable))
            .min_by_key(|(_, s)| s[&Step::Durable])
            .map(|(_, s)| s);
        let f = |s: Step| follower.and_then(|f| f.get(&s).copied());
        let mut put = |i: usize, from: Option<u64>, to: Option<u64>| {
            if let (Some(a), Some(b)) = (from, to) {
                samples[i].push(b.saturating_sub(a));
            }
        };
        put(0, l(Step::Propose), l(Step::Append));
        put(1, l(Step::Append), f(Step::Append));
        put(2, f(Step::Append), f(Step::WriteStart));
        put(3, f(Step::WriteStart), f(Step::Durable));
        put(4, f(Step::Durable), l(Step::ApplyStart));
        put(5, l(Step::ApplyStart), l(Step::Applied));
        put(6, l(Step::Applied), l(Step::Answered));
        put(7, l(Step::Propose), l(Step::Answered));
        put(8, l(Step::Append), l(Step::Durable));
        put(9, answered_at, l(Step::Propose));
        put(10, f(Step::Durable), f(Step::Replied));
        // The entry commits once the leader holds two of its three copies
        // (with three nodes): the second of its own flush and the
        // followers' successful answers; then openraft's core and the state
        // machine's task start the apply.
        let mut held: Vec<u64> = nodes
            .iter()
            .filter_map(|(&n, s)| {
                s.get(if n == leader { &Step::Durable } else { &Step::Replied })
                    .copied()
            })
            .collect();
        held.sort_unstable();
        put(11, held.get(1).copied(), l(Step::ApplyStart));
        put(12, l(Step::Append), f(Step::Sent));
        put(13, f(Step::Sent), f(Step::Received));
        if let Some(a) = l(Step::Answered) {
            answered_at = Some(a);
        }
    }
    NAMES
        .iter()
        .zip(samples)
        .map(|(&name, mut v)| {
            v.sort_unstable();
            let us = |ns: u64| ns as f64 / 1000.0;
            let pick = |q: f64| {
                v.get(((v.len() as f64 - 1.0) * q).round() as usize)
                    .map_or(0.0, |&x| us(x))
            };
            Interval {
                name,
                count: v.len(),
                mean_us: if v.is_empty() {
                    0.0
                } else {
                    us(v.iter().sum::<u64>()) / v.len() as f64
                },
                median_us: pick(0.5),
                p90_us: pick(0.9),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(node: u64, index: u64, step: Step, at_us: u64) -> Event {
        Event {
            node,
            index,
            step,
            at: at_us * 1000,
        }
    }

    /// Two rounds on a leader (node 1) and two followers: each interval is
    /// measured between the right nodes' steps, the follower durable first
    /// is the one taken, and the clients' gap runs from one answer to the
    /// next proposal.
    #[test]
    fn the_round_is_cut_at_the_right_steps() {
        let mut events = Vec::new();
        for (i, base) in [(1u64, 0u64), (2, 1000)] {
            events.extend([
                ev(1, i, Step::Propose, base),
                ev(1, i, Step::Append, base + 10),
                ev(1, i, Step::WriteStart, base + 15),
                ev(2, i, Step::Append, base + 40),
                ev(3, i, Step::Sent, base + 25),
                ev(3, i, Step::Received, base + 33),
                ev(3, i, Step::Append, base + 45),
                ev(2, i, Step::WriteStart, base + 60),
                ev(3, i, Step::WriteStart, base + 62),
                ev(3, i, Step::Durable, base + 200),
                ev(2, i, Step::Durable, base + 300),
                ev(1, i, Step::Durable, base + 220),
                ev(3, i, Step::Replied, base + 235),
                ev(2, i, Step::Replied, base + 310),
                ev(1, i, Step::ApplyStart, base + 260),
                ev(2, i, Step::ApplyStart, base + 500),
                ev(1, i, Step::Applied, base + 360),
                ev(1, i, Step::Answered, base + 380),
            ]);
        }
        let b = breakdown(&events);
        let median = |name: &str| b.iter().find(|i| i.name == name).unwrap().median_us;
        assert_eq!(median("propose -> leader's append"), 10.0);
        // Node 2 appended first, but node 3 was durable first: its steps.
        assert_eq!(median("leader's append -> follower's append"), 35.0);
        assert_eq!(median("follower's append -> its writer starts"), 17.0);
        assert_eq!(median("follower's writer: commit + fsync"), 138.0);
        assert_eq!(median("follower durable -> leader's apply starts"), 60.0);
        assert_eq!(median("leader's apply"), 100.0);
        assert_eq!(median("applied -> proposer answered"), 20.0);
        assert_eq!(median("round (propose -> answered)"), 380.0);
        assert_eq!(median("leader's append -> leader durable"), 210.0);
        assert_eq!(median("  of which: follower durable -> its answer at the leader"), 35.0);
        // The second of the leader's flush (220), node 3's answer (235)
        // and node 2's (310).
        assert_eq!(median("  and: second of 3 copies held -> apply starts"), 25.0);
        assert_eq!(median("  TCP: leader's append -> written to the socket"), 15.0);
        assert_eq!(median("  TCP: written -> decoded by the follower"), 8.0);
        let clients = b
            .iter()
            .find(|i| i.name == "answered -> next proposal (clients)")
            .unwrap();
        assert_eq!((clients.count, clients.median_us), (1, 620.0));
    }

    /// Off (the default), nothing is recorded.
    #[test]
    fn off_records_nothing() {
        event(7, 1, Step::Append);
        event_at(7, 2, Step::Propose, 5);
        assert!(take().is_empty());
    }
}
