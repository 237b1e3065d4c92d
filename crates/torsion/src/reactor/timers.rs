//! The timer queue: an indexed 4-ary heap over a slab.
//!
//! Every pending timer's value lives in one slab slot; the heap holds one
//! small node per timer, `(deadline, order, slot)`, ordered by `(deadline,
//! order)`, and each slot remembers where in the heap its node sits.
//! That back-index makes cancelling and rescheduling `O(log n)` instead of
//! the lazy-deletion trick (mark cancelled, skip on pop) that lets cancelled
//! timers pile up in memory: here a cancelled timer's slot is freed at once
//! and reused by the next timer scheduled, so memory tracks the live timers.
//!
//! Timers with the same deadline fire in the order they were scheduled (or
//! last rescheduled), which is what Twisted's `callLater` promises.

use slab::Slab;
use std::time::{Duration, Instant};

/// How far out a deadline that would not fit in an [`Instant`] is kept:
/// a century, in practice never.
pub(crate) const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 86_400);

/// `from + delay`, or [`FAR_FUTURE`] from `from` when that sum does not
/// fit in an `Instant` (a `Duration::MAX` delay, a timeout of
/// 18446744073709551615 seconds): such a timer never fires, it does not
/// panic.
pub(crate) fn deadline_after(from: Instant, delay: Duration) -> Instant {
    from.checked_add(delay)
        .or_else(|| from.checked_add(FAR_FUTURE.min(delay)))
        .unwrap_or(from)
}

/// Names one scheduled timer. The `id` is unique for the queue's lifetime,
/// so a key whose slot was freed and reused no longer matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey {
    slot: usize,
    id: u64,
}

/// A pending timer's slot: its value, and where its node sits in the heap.
struct Entry<T> {
    id: u64,
    pos: usize,
    value: T,
}

/// One heap node: the ordering key kept inline, so that sifting compares
/// neighbouring nodes of one array instead of reaching into the slab for
/// each comparison (a cache miss apiece once the queue is large).
#[derive(Clone, Copy)]
struct Node {
    key: OrderKey,
    slot: usize,
}

impl Node {
    fn before(&self, other: &Node) -> bool {
        self.key < other.key
    }
}

/// `(deadline, order)` as two integers: the deadline as signed
/// nanoseconds from the queue's anchor (sign bit flipped, so it sorts as
/// unsigned), then the schedule order. Cheaper to compare than an
/// `Instant`'s seconds-then-nanoseconds, and 16 bytes with no padding (a
/// `u128` would align the node to 16 and make it 32 bytes).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct OrderKey {
    at: u64,
    order: u64,
}

impl OrderKey {
    fn offset(self) -> i64 {
        (self.at ^ SIGN) as i64
    }
}

const SIGN: u64 = 1 << 63;

/// Children per heap node: a 4-ary heap is half as deep as a binary one,
/// and a node's children share a cache line or two.
const ARITY: usize = 4;

/// A priority queue of values keyed by deadline, with `O(log n)` insert,
/// cancel and reschedule.
pub(crate) struct TimerQueue<T> {
    entries: Slab<Entry<T>>,
    heap: Vec<Node>,
    next: u64,
    /// Deadlines are kept as nanoseconds from here: ±292 years reach
    /// exactly; a deadline further out is kept as the furthest there is.
    anchor: Instant,
}

impl<T> TimerQueue<T> {
    pub(crate) fn new() -> Self {
        TimerQueue {
            entries: Slab::new(),
            heap: Vec::new(),
            next: 0,
            anchor: Instant::now(),
        }
    }

    fn key(&self, deadline: Instant, order: u64) -> OrderKey {
        let offset = match deadline.checked_duration_since(self.anchor) {
            Some(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
            None => i64::try_from(self.anchor.duration_since(deadline).as_nanos())
                .map_or(i64::MIN, |before| -before),
        };
        OrderKey {
            at: offset as u64 ^ SIGN,
            order,
        }
    }

    fn deadline_of(&self, key: OrderKey) -> Instant {
        let offset = key.offset();
        let magnitude = std::time::Duration::from_nanos(offset.unsigned_abs());
        let at = if offset >= 0 {
            self.anchor.checked_add(magnitude)
        } else {
            self.anchor.checked_sub(magnitude)
        };
        at.unwrap_or(self.anchor)
    }

    /// How many timers are pending.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// How many slots the queue holds allocated (live plus free for reuse).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    fn bump(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// Schedules `value` at `deadline`.
    pub(crate) fn insert(&mut self, deadline: Instant, value: T) -> TimerKey {
        let order = self.bump();
        let pos = self.heap.len();
        let slot = self.entries.insert(Entry {
            id: order,
            pos,
            value,
        });
        let key = self.key(deadline, order);
        self.heap.push(Node { key, slot });
        self.sift_up(pos);
        TimerKey { slot, id: order }
    }

    fn entry(&self, key: TimerKey) -> Option<&Entry<T>> {
        self.entries.get(key.slot).filter(|e| e.id == key.id)
    }

    /// The deadline of a pending timer, or `None` once it fired or was
    /// cancelled.
    pub(crate) fn deadline(&self, key: TimerKey) -> Option<Instant> {
        self.entry(key)
            .map(|e| self.deadline_of(self.heap[e.pos].key))
    }

    /// Removes a pending timer and hands back its value.
    pub(crate) fn cancel(&mut self, key: TimerKey) -> Option<T> {
        let pos = self.entry(key)?.pos;
        Some(self.remove_at(pos))
    }

    /// Moves a pending timer to a new deadline. It then fires after every
    /// timer already scheduled for that same instant. Returns `false` if the
    /// timer is no longer pending.
    pub(crate) fn reschedule(&mut self, key: TimerKey, deadline: Instant) -> bool {
        let Some(pos) = self.entry(key).map(|e| e.pos) else {
            return false;
        };
        let order = self.bump();
        self.heap[pos].key = self.key(deadline, order);
        self.resift(pos);
        true
    }

    /// The earliest deadline, if any timer is pending.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.first().map(|n| self.deadline_of(n.key))
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<T> {
        // Due when its key sorts before anything scheduled later at `now`.
        if self.heap.first()?.key > self.key(now, u64::MAX) {
            return None;
        }
        Some(self.remove_at(0))
    }

    /// Drops every pending timer.
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
        self.entries.clear();
    }

    fn remove_at(&mut self, pos: usize) -> T {
        let gone = self.heap.swap_remove(pos);
        if pos < self.heap.len() {
            // The last node took the removed one's place: it may belong
            // above or below it.
            self.resift(pos);
        }
        let entry = self.entries.remove(gone.slot);
        // Give memory back once a large queue drains completely, so a burst
        // of timers does not pin its peak forever.
        if self.entries.is_empty() && self.entries.capacity() > 1024 {
            self.entries = Slab::new();
            self.heap = Vec::new();
        }
        entry.value
    }

    /// Puts the node at `pos` where it belongs after its key changed.
    fn resift(&mut self, pos: usize) {
        if pos > 0 && self.heap[pos].before(&self.heap[(pos - 1) / ARITY]) {
            self.sift_up(pos);
        } else {
            self.sift_down(pos);
        }
    }

    /// Places `node` at `pos` and tells its slot.
    fn place(&mut self, pos: usize, node: Node) {
        self.entries[node.slot].pos = pos;
        self.heap[pos] = node;
    }

    fn sift_up(&mut self, mut pos: usize) {
        let node = self.heap[pos];
        while pos > 0 {
            let parent = (pos - 1) / ARITY;
            let p = self.heap[parent];
            if !node.before(&p) {
                break;
            }
            self.place(pos, p);
            pos = parent;
        }
        self.place(pos, node);
    }

    fn sift_down(&mut self, mut pos: usize) {
        let node = self.heap[pos];
        let len = self.heap.len();
        loop {
            let first = ARITY * pos + 1;
            if first >= len {
                break;
            }
            let mut child = first;
            for i in first + 1..(first + ARITY).min(len) {
                if self.heap[i].before(&self.heap[child]) {
                    child = i;
                }
            }
            let c = self.heap[child];
            if !c.before(&node) {
                break;
            }
            self.place(pos, c);
            pos = child;
        }
        self.place(pos, node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn pops_in_deadline_then_schedule_order() {
        let base = Instant::now();
        let mut q = TimerQueue::new();
        q.insert(at(base, 30), "c");
        q.insert(at(base, 10), "a1");
        q.insert(at(base, 20), "b");
        q.insert(at(base, 10), "a2");
        let now = at(base, 100);
        let got: Vec<_> = std::iter::from_fn(|| q.pop_due(now)).collect();
        assert_eq!(got, ["a1", "a2", "b", "c"]);
    }

    #[test]
    fn nothing_pops_before_its_deadline() {
        let base = Instant::now();
        let mut q = TimerQueue::new();
        q.insert(at(base, 10), 1);
        assert_eq!(q.pop_due(at(base, 9)), None);
        assert_eq!(q.next_deadline(), Some(at(base, 10)));
        assert_eq!(q.pop_due(at(base, 10)), Some(1));
    }

    #[test]
    fn cancelled_keys_stay_dead_after_their_slot_is_reused() {
        let base = Instant::now();
        let mut q = TimerQueue::new();
        let k = q.insert(at(base, 10), 1);
        assert_eq!(q.cancel(k), Some(1));
        assert_eq!(q.cancel(k), None);
        let k2 = q.insert(at(base, 10), 2);
        assert_eq!(q.deadline(k), None);
        assert!(!q.reschedule(k, at(base, 1)));
        assert_eq!(q.deadline(k2), Some(at(base, 10)));
    }

    #[test]
    fn rescheduled_timer_goes_after_its_new_peers() {
        let base = Instant::now();
        let mut q = TimerQueue::new();
        let a = q.insert(at(base, 5), "a");
        q.insert(at(base, 10), "b");
        assert!(q.reschedule(a, at(base, 10)));
        let got: Vec<_> = std::iter::from_fn(|| q.pop_due(at(base, 10))).collect();
        assert_eq!(got, ["b", "a"]);
    }

    #[test]
    fn deadlines_before_and_after_the_anchor_keep_their_order_and_value() {
        let mut q = TimerQueue::new();
        let anchor = q.anchor;
        let early = anchor - Duration::from_secs(3600);
        let just_before = anchor - Duration::from_nanos(1);
        let late = anchor + Duration::from_nanos(1);
        let keys = [
            q.insert(late, "late"),
            q.insert(anchor, "anchor"),
            q.insert(just_before, "just before"),
            q.insert(early, "early"),
        ];
        assert_eq!(q.deadline(keys[0]), Some(late));
        assert_eq!(q.deadline(keys[3]), Some(early));
        assert_eq!(q.next_deadline(), Some(early));
        assert_eq!(q.pop_due(early - Duration::from_nanos(1)), None);
        let got: Vec<_> = std::iter::from_fn(|| q.pop_due(anchor)).collect();
        assert_eq!(got, ["early", "just before", "anchor"]);
        assert_eq!(q.pop_due(late), Some("late"));
    }

    #[test]
    fn a_deadline_centuries_away_still_sorts_last() {
        let mut q = TimerQueue::new();
        let far = q.anchor + Duration::from_secs(400 * 365 * 86_400);
        q.insert(far, "far");
        q.insert(q.anchor + Duration::from_secs(1), "soon");
        assert_eq!(q.pop_due(q.anchor + Duration::from_secs(2)), Some("soon"));
        assert_eq!(q.pop_due(q.anchor + Duration::from_secs(2)), None);
        // Kept as the furthest deadline there is (292 years out).
        assert!(q.next_deadline() > Some(q.anchor + Duration::from_secs(290 * 365 * 86_400)));
        assert_eq!(q.pop_due(far), Some("far"));
    }

    #[test]
    fn a_million_timers_half_cancelled_reuse_their_slots() {
        let base = Instant::now();
        let mut q = TimerQueue::new();
        let keys: Vec<_> = (0..1_000_000u64)
            .map(|i| q.insert(at(base, (i * 7919) % 100_000), i))
            .collect();
        let cap = q.capacity();
        for k in keys.iter().step_by(2) {
            assert!(q.cancel(*k).is_some());
        }
        assert_eq!(q.len(), 500_000);
        // Scheduling as many again fills the freed slots: no growth.
        for i in 0..500_000u64 {
            q.insert(at(base, i % 1000), i);
        }
        assert_eq!(q.capacity(), cap);
        let mut last = None;
        let mut n = 0;
        while q.pop_due(at(base, 200_000)).is_some() {
            n += 1;
            let d = q.next_deadline();
            if let (Some(prev), Some(d)) = (last, d) {
                assert!(d >= prev);
            }
            last = d;
        }
        assert_eq!(n, 1_000_000);
    }

    proptest! {
        #[test]
        fn matches_a_sorted_model(ops in proptest::collection::vec((0u8..3, 0u64..50, any::<prop::sample::Index>()), 1..300)) {
            let base = Instant::now();
            let mut q = TimerQueue::new();
            let mut model: Vec<(Instant, u64, u64)> = Vec::new(); // (deadline, order, value)
            let mut keys: Vec<(TimerKey, u64)> = Vec::new();
            let mut order = 0u64;
            for (i, (op, ms, idx)) in ops.into_iter().enumerate() {
                let v = i as u64;
                match op {
                    0 => {
                        order += 1;
                        keys.push((q.insert(at(base, ms), v), v));
                        model.push((at(base, ms), order, v));
                    }
                    1 if !keys.is_empty() => {
                        let (k, v) = keys.swap_remove(idx.index(keys.len()));
                        prop_assert_eq!(q.cancel(k), Some(v));
                        model.retain(|m| m.2 != v);
                    }
                    _ if !keys.is_empty() => {
                        let (k, v) = keys[idx.index(keys.len())];
                        order += 1;
                        prop_assert!(q.reschedule(k, at(base, ms)));
                        for m in model.iter_mut().filter(|m| m.2 == v) {
                            *m = (at(base, ms), order, v);
                        }
                    }
                    _ => {}
                }
            }
            model.sort();
            let got: Vec<u64> = std::iter::from_fn(|| q.pop_due(at(base, 1000))).collect();
            let want: Vec<u64> = model.into_iter().map(|m| m.2).collect();
            prop_assert_eq!(got, want);
        }
    }
}
