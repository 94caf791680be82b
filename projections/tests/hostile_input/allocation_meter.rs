//! A global allocator that measures, per thread, the most bytes a closure
//! had live at once ([`peak_bytes`]). With it the parsers' property tests
//! check that the memory a parser takes stays proportional to its input: an
//! unbounded allocation is no panic, so nothing else would catch it.
//!
//! Counts are per thread, so tests running in parallel do not disturb each
//! other; a parser that hands work to other threads would escape the count
//! (none of ours does).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

pub struct AllocationMeter;

#[global_allocator]
static METER: AllocationMeter = AllocationMeter;

thread_local! {
    static LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
    static PEAK_BYTES: Cell<isize> = const { Cell::new(0) };
}

fn record(delta_bytes: isize) {
    // `try_with`: the allocator also runs while a thread's locals are torn down.
    let _ = LIVE_BYTES.try_with(|live| {
        let now = live.get() + delta_bytes;
        live.set(now);
        let _ = PEAK_BYTES.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// bookkeeping only touches const-initialized thread locals, which never allocate.
unsafe impl GlobalAlloc for AllocationMeter {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            record(layout.size() as isize);
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            record(layout.size() as isize);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        unsafe { System.dealloc(pointer, layout) };
        record(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            record(new_size as isize - layout.size() as isize);
        }
        moved
    }
}

/// Runs `f` and returns its value with the most bytes that were live at once
/// on this thread while it ran, beyond those live when it started.
pub fn peak_bytes<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = LIVE_BYTES.with(Cell::get);
    PEAK_BYTES.with(|peak| peak.set(start));
    let value = f();
    let peak = PEAK_BYTES.with(Cell::get);
    (value, (peak - start).max(0) as usize)
}

/// The memory a parser may take for `input_bytes` of input: a fixed
/// allowance for buffers and error messages, plus a small multiple of the
/// input (the parsed values and their strings).
pub fn parser_budget_bytes(input_bytes: usize) -> usize {
    const FIXED_BYTES: usize = 256 << 10;
    const PER_INPUT_BYTE: usize = 32;
    FIXED_BYTES + PER_INPUT_BYTE * input_bytes
}
