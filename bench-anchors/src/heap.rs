//! The system allocator, counting the bytes this process holds: so the report can say how much
//! memory a store's in-process state holds (live bytes with the store, minus live bytes once
//! it is dropped), measured rather than taken from a configured budget.
//!
//! Each thread counts in a slot of its own (one cache line each), so counting costs every store
//! the same few uncontended instructions per allocation and no thread waits on another.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

/// Threads beyond this many share the last slot (still counted, only contended).
const SLOTS: usize = 256;

#[repr(align(64))]
struct Slot(AtomicI64);

#[allow(clippy::declare_interior_mutable_const)] // an initialiser for the array only
const ZERO: Slot = Slot(AtomicI64::new(0));
static LIVE: [Slot; SLOTS] = [ZERO; SLOTS];
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static MY_SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn count(delta: i64) {
    let slot = MY_SLOT
        .try_with(|slot| {
            if slot.get() == usize::MAX {
                slot.set(NEXT_SLOT.fetch_add(1, Ordering::Relaxed).min(SLOTS - 1));
            }
            slot.get()
        })
        // A thread being torn down: the shared last slot.
        .unwrap_or(SLOTS - 1);
    LIVE[slot].0.fetch_add(delta, Ordering::Relaxed);
}

/// Bytes allocated and not yet freed, over every thread.
pub fn live() -> i64 {
    LIVE.iter().map(|slot| slot.0.load(Ordering::Relaxed)).sum()
}

/// [`System`], counting.
pub struct Counting;

// SAFETY: every call is passed to `System` unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size() as i64);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(layout.size() as i64);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as i64));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            count(new_size as i64 - layout.size() as i64);
        }
        new
    }
}
