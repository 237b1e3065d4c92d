//! The timer queue: an indexed binary heap over a slab.
//!
//! Every pending timer lives in one slab slot; the heap orders slot keys by
//! `(deadline, order)`, and each slot remembers where in the heap it sits.
//! That back-index makes cancelling and rescheduling `O(log n)` instead of
//! the lazy-deletion trick (mark cancelled, skip on pop) that lets cancelled
//! timers pile up in memory: here a cancelled timer's slot is freed at once
//! and reused by the next timer scheduled, so memory tracks the live timers.
//!
//! Timers with the same deadline fire in the order they were scheduled (or
//! last rescheduled), which is what Twisted's `callLater` promises.

use slab::Slab;
use std::time::Instant;

/// Names one scheduled timer. The `id` is unique for the queue's lifetime,
/// so a key whose slot was freed and reused no longer matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey {
    slot: usize,
    id: u64,
}

struct Entry<T> {
    deadline: Instant,
    order: u64,
    id: u64,
    pos: usize,
    value: T,
}

/// A priority queue of values keyed by deadline, with `O(log n)` insert,
/// cancel and reschedule.
pub(crate) struct TimerQueue<T> {
    entries: Slab<Entry<T>>,
    heap: Vec<usize>,
    next: u64,
}

impl<T> TimerQueue<T> {
    pub(crate) fn new() -> Self {
        TimerQueue {
            entries: Slab::new(),
            heap: Vec::new(),
            next: 0,
        }
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
            deadline,
            order,
            id: order,
            pos,
            value,
        });
        self.heap.push(slot);
        self.sift_up(pos);
        TimerKey { slot, id: order }
    }

    fn entry(&self, key: TimerKey) -> Option<&Entry<T>> {
        self.entries.get(key.slot).filter(|e| e.id == key.id)
    }

    /// The deadline of a pending timer, or `None` once it fired or was
    /// cancelled.
    pub(crate) fn deadline(&self, key: TimerKey) -> Option<Instant> {
        self.entry(key).map(|e| e.deadline)
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
        let e = &mut self.entries[key.slot];
        e.deadline = deadline;
        e.order = order;
        self.sift_up(pos);
        let pos = self.entries[key.slot].pos;
        self.sift_down(pos);
        true
    }

    /// The earliest deadline, if any timer is pending.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.first().map(|&slot| self.entries[slot].deadline)
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<T> {
        let &slot = self.heap.first()?;
        if self.entries[slot].deadline > now {
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
        let last = self.heap.len() - 1;
        self.heap.swap(pos, last);
        let slot = self.heap.pop().expect("heap is not empty");
        if pos < last {
            let moved = self.heap[pos];
            self.entries[moved].pos = pos;
            self.sift_up(pos);
            let pos = self.entries[moved].pos;
            self.sift_down(pos);
        }
        let entry = self.entries.remove(slot);
        // Give memory back once a large queue drains completely, so a burst
        // of timers does not pin its peak forever.
        if self.entries.is_empty() && self.entries.capacity() > 1024 {
            self.entries = Slab::new();
            self.heap = Vec::new();
        }
        entry.value
    }

    fn less(&self, a: usize, b: usize) -> bool {
        let (ea, eb) = (&self.entries[a], &self.entries[b]);
        (ea.deadline, ea.order) < (eb.deadline, eb.order)
    }

    fn set(&mut self, pos: usize, slot: usize) {
        self.heap[pos] = slot;
        self.entries[slot].pos = pos;
    }

    fn sift_up(&mut self, mut pos: usize) {
        let slot = self.heap[pos];
        while pos > 0 {
            let parent = (pos - 1) / 2;
            let p = self.heap[parent];
            if !self.less(slot, p) {
                break;
            }
            self.set(pos, p);
            pos = parent;
        }
        self.set(pos, slot);
    }

    fn sift_down(&mut self, mut pos: usize) {
        let slot = self.heap[pos];
        let len = self.heap.len();
        loop {
            let left = 2 * pos + 1;
            if left >= len {
                break;
            }
            let right = left + 1;
            let child = if right < len && self.less(self.heap[right], self.heap[left]) {
                right
            } else {
                left
            };
            if !self.less(self.heap[child], slot) {
                break;
            }
            self.set(pos, self.heap[child]);
            pos = child;
        }
        self.set(pos, slot);
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
