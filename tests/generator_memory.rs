//! The generator's memory follows the twins that exist, not `workload.twins` (issue 13): every
//! heap byte this test binary allocates is counted, and a budget turns an allocation past it into
//! a failed allocation (the process aborts with `memory allocation of N bytes failed`).
//!
//! `cargo test --test generator_memory -- --nocapture` prints the bytes per live twin quoted in
//! the README.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use twinroute::generator::{
    DEFAULT_MIX, DEFAULT_START_TIME, Generator, RateShape, WorkloadSettings,
};

/// Counts live heap bytes and their peak, and refuses allocations past a budget.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static BUDGET: AtomicUsize = AtomicUsize::new(usize::MAX);

impl Counting {
    fn grow(size: usize) -> bool {
        let live = LIVE.fetch_add(size, SeqCst) + size;
        if live > BUDGET.load(SeqCst) {
            LIVE.fetch_sub(size, SeqCst);
            return false;
        }
        PEAK.fetch_max(live, SeqCst);
        true
    }
}

// SAFETY: every call is forwarded to `System` with the caller's layout; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !Self::grow(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !Self::grow(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded as is.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), SeqCst);
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() && !Self::grow(new_size - layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded as is.
        let moved = unsafe { System.realloc(ptr, layout, new_size) };
        if moved.is_null() {
            if new_size > layout.size() {
                LIVE.fetch_sub(new_size - layout.size(), SeqCst);
            }
        } else if new_size < layout.size() {
            LIVE.fetch_sub(layout.size() - new_size, SeqCst);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The counters are process-wide: one measurement at a time.
static MEASURING: Mutex<()> = Mutex::new(());

fn workload(twins: u32, mix: [u32; 7], count: u64) -> WorkloadSettings {
    WorkloadSettings {
        seed: 13,
        twins,
        mix,
        rate: RateShape::Constant {
            events_per_second: 1000.0,
        },
        count: Some(count),
        duration: None,
        start_time: None,
    }
}

/// Bytes the generator holds after `count` events of `settings` (events dropped as they come),
/// and the peak above the starting point while it ran.
fn held_after(settings: &WorkloadSettings) -> (usize, usize) {
    let before = LIVE.load(SeqCst);
    PEAK.store(before, SeqCst);
    let mut generator = Generator::new(
        settings,
        "contoso.api.wus2.digitaltwins.azure.net",
        DEFAULT_START_TIME,
    );
    for scheduled in generator.by_ref() {
        drop(scheduled);
    }
    let held = LIVE.load(SeqCst).saturating_sub(before);
    let peak = PEAK.load(SeqCst).saturating_sub(before);
    drop(generator);
    (held, peak)
}

#[test]
fn a_billion_twin_pool_costs_only_the_twins_a_short_run_touches() {
    let _one = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    // 16 MiB is far above what 50 events need and far below a billion of anything.
    BUDGET.store(LIVE.load(SeqCst) + (16 << 20), SeqCst);
    let (held, peak) = held_after(&workload(1_000_000_000, DEFAULT_MIX, 50));
    BUDGET.store(usize::MAX, SeqCst);
    assert!(
        peak < 1 << 20,
        "a 50-event run over 10^9 twins peaked at {peak} bytes"
    );
    assert!(held < 64 << 10, "it holds {held} bytes after the run");
}

#[test]
fn memory_per_live_twin() {
    let _one = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let mut creates = [0; 7];
    creates[0] = 1; // Twin.Create only: every event makes one more twin exist
    let twins = 100_000;
    for pool in [twins as u32, 1_000_000_000] {
        let (held, _) = held_after(&workload(pool, creates, twins));
        let per_twin = held as f64 / twins as f64;
        println!(
            "pool {pool}: {twins} live twins hold {held} bytes, {per_twin:.0} bytes per live twin"
        );
        assert!(
            per_twin < 1024.0,
            "pool {pool}: {per_twin:.0} bytes per live twin"
        );
    }
    // An empty pool of a billion costs (almost) nothing.
    let (held, _) = held_after(&workload(1_000_000_000, creates, 0));
    assert!(held < 4096, "{held}");
}
