//! As-of lookups in an in-memory directory of 20,000 entries (issue 7's goal: at least
//! 1,000,000 lookups per second on one core), and the memory one entry takes, counted by a
//! counting allocator around the system one. Run: `cargo bench -p tereze-reference-data`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};

use chrono::NaiveDate;
use criterion::{Criterion, Throughput};
use tereze_reference_data::Directories;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts the bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ENTRIES: usize = 20_000;

/// A commodity-code-like directory: 16,000 codes, 4,000 of them with a second interval (a
/// duty change on 2025-01-01), names in three languages, a decimal attribute, national codes
/// for two states.
fn directory_toml() -> String {
    let mut s = String::from(
        "id = \"B.HS\"\nname = \"bench\"\nvalid_from = \"2020-01-01\"\n[attributes]\nduty = \"decimal\"\n",
    );
    let codes = ENTRIES * 4 / 5;
    for i in 0..codes {
        let code = format!("{:010}", 100_000_000 + i * 37);
        let changed = i % 4 == 0;
        let to = if changed {
            "valid_to = \"2024-12-31\"\n"
        } else {
            ""
        };
        s.push_str(&format!(
            "[[entry]]\ncode = \"{code}\"\nnames = {{ ru = \"Товар {i}\", kk = \"Тауар {i}\", en = \"Goods {i}\" }}\nattributes = {{ duty = \"{}.5\" }}\nnational = {{ KZ = [\"{code}\"], RU = [\"{code}\"] }}\n{to}",
            i % 20
        ));
        if changed {
            s.push_str(&format!(
                "[[entry]]\ncode = \"{code}\"\nnames = {{ ru = \"Товар {i}\", kk = \"Тауар {i}\", en = \"Goods {i}\" }}\nattributes = {{ duty = \"{}\" }}\nnational = {{ KZ = [\"{code}\"], RU = [\"{code}\"] }}\nvalid_from = \"2025-01-01\"\n",
                i % 15
            ));
        }
    }
    s
}

fn main() {
    let text = directory_toml();
    let before = LIVE.load(Ordering::Relaxed);
    let mut dirs = Directories::default();
    dirs.add_toml(&text).expect("bench directory loads");
    let used = LIVE.load(Ordering::Relaxed) - before;
    let n = dirs.get("B.HS").map_or(0, |d| d.entries.len());
    assert_eq!(n, ENTRIES);
    println!(
        "memory: {used} bytes for {n} entries = {} bytes per entry (entries, names, attributes, national codes, both indexes)",
        used / n as isize
    );

    let codes: Vec<String> = (0..ENTRIES * 4 / 5)
        .map(|i| format!("{:010}", 100_000_000 + i * 37))
        .collect();
    let days = [
        NaiveDate::from_ymd_opt(2024, 12, 31).expect("date"),
        NaiveDate::from_ymd_opt(2025, 1, 1).expect("date"),
        NaiveDate::from_ymd_opt(2026, 11, 25).expect("date"),
    ];
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("reference-as-of-lookup");
    const BATCH: usize = 1000;
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut k = 0usize;
    g.bench_function("entry(directory, code, as_of) x1000", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                k = (k + 7919) % codes.len();
                let e = dirs.entry("B.HS", &codes[k], days[k % 3]);
                black_box(e.is_ok());
            }
        })
    });
    let mut k = 0usize;
    g.bench_function("valid(directory, code, as_of) x1000", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                k = (k + 7919) % codes.len();
                black_box(dirs.valid("B.HS", &codes[k], days[k % 3]));
            }
        })
    });
    let mut k = 0usize;
    g.bench_function("union_code(KZ national) x1000", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                k = (k + 7919) % codes.len();
                black_box(
                    dirs.on(days[k % 3])
                        .union_code("B.HS", "KZ", &codes[k])
                        .is_ok(),
                );
            }
        })
    });
    g.finish();
    c.final_summary();
}
