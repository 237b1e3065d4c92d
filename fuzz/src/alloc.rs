//! A global allocator that counts the live heap bytes of each thread, so
//! a target can check that the code under test holds a bounded amount of
//! memory whatever the peer sends.
//!
//! It wraps the system allocator and only adds to or subtracts from two
//! thread-local counters; every target runs on one thread, and `cargo
//! test` runs each test on its own, so the counts of one run are not
//! disturbed by another. Measuring the heap is what `GlobalAlloc` is for:
//! no safe interface reports a thread's live allocations, hence the one
//! `unsafe impl` here.
//!
//! ```
//! use torsion_fuzz::alloc;
//! let before = alloc::live();
//! alloc::reset_peak();
//! let v = vec![0u8; 4096];
//! assert!(alloc::live() - before >= 4096);
//! drop(v);
//! assert!(alloc::peak() - before >= 4096);
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

/// The counting allocator, installed for every binary and test of this
/// crate.
pub struct Counting;

#[global_allocator]
static GLOBAL: Counting = Counting;

fn add(n: isize) {
    // `try_with`: a thread being torn down may still free memory.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + n;
        live.set(now);
        let _ = PEAK.try_with(|peak| {
            if now > peak.get() {
                peak.set(now);
            }
        });
    });
}

// SAFETY: every call is passed to `System` unchanged; the counters are
// plain thread-local integers with no destructor, touched without
// allocating.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        add(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Heap bytes this thread has allocated and not freed (memory allocated
/// on one thread and freed on another skews it; the targets do neither).
pub fn live() -> isize {
    LIVE.with(Cell::get)
}

/// The highest [`live`] since the last [`reset_peak`].
pub fn peak() -> isize {
    PEAK.with(Cell::get)
}

/// Starts a new peak measurement from the current [`live`].
pub fn reset_peak() {
    let now = live();
    PEAK.with(|p| p.set(now));
}
