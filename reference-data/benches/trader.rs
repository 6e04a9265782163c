//! Trader identifier validation on one core (issue 8's goal: at least 5,000,000 identifiers per
//! second). The set mixes valid identifiers of all five states in equal shares (KZ IINs and
//! BINs, RU INNs of 10 and 12 digits, BY UNPs with digits and with letters, AM, KG), shuffled
//! so that branch prediction cannot learn the order. Run:
//! `cargo bench -p tereze-reference-data --bench trader`.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use tereze_reference_data::trader::{complete, parse, validate, Country};

const IDS: usize = 4096;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + (self.next() % 10) as u8))
            .collect()
    }
}

/// The leading part of a valid number of one of eight kinds.
fn body(rng: &mut XorShift, kind: u64) -> (Country, String) {
    let r = rng.next();
    match kind {
        0 => (
            Country::KZ,
            format!(
                "{:02}{:02}{:02}{}{}",
                r % 100,
                1 + r % 12,
                1 + r % 28,
                1 + r % 6,
                rng.digits(4)
            ),
        ),
        1 => (
            Country::KZ,
            format!(
                "{:02}{:02}{}{}{}",
                r % 100,
                1 + r % 12,
                4 + r % 3,
                r % 4,
                rng.digits(5)
            ),
        ),
        2 => (Country::RU, format!("{:02}{}", 1 + r % 99, rng.digits(7))),
        3 => (Country::RU, format!("{:02}{}", 1 + r % 99, rng.digits(8))),
        4 => (Country::BY, format!("{}{}", 1 + r % 7, rng.digits(7))),
        5 => (
            Country::BY,
            format!(
                "{}{}{}",
                char::from(b"ABCEHKM"[(r % 7) as usize]),
                char::from(b"ABCEHKMOPT"[(r % 10) as usize]),
                rng.digits(6)
            ),
        ),
        6 => (Country::AM, rng.digits(8)),
        _ => (Country::KG, format!("{}{}", r % 3, rng.digits(13))),
    }
}

fn mixed_valid(rng: &mut XorShift) -> Vec<String> {
    let mut ids = Vec::with_capacity(IDS);
    // KZ, RU and BY have two kinds each; give every state the same share.
    let kinds = [0, 1, 2, 3, 4, 5, 6, 6, 7, 7];
    while ids.len() < IDS {
        let kind = kinds[ids.len() % kinds.len()];
        let (country, b) = body(rng, kind);
        if let Some(number) = complete(country, &b) {
            ids.push(format!("{country}{number}"));
        }
    }
    for i in (1..ids.len()).rev() {
        ids.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    ids
}

fn main() {
    let mut rng = XorShift(0x5EED_1234_ABCD_EF01);
    let valid = mixed_valid(&mut rng);
    assert!(valid.iter().all(|id| validate(id).is_ok()));
    // One in four with one of its last three digits changed: the refusals take the error path.
    // Not all are refused: AM and KG numbers have no check digit, and KZ digit 11 weighs 11.
    let mut typed = valid.clone();
    for (i, id) in typed.iter_mut().enumerate().filter(|(i, _)| i % 4 == 0) {
        let mut b = id.clone().into_bytes();
        let p = b.len() - 1 - i % 3;
        b[p] = if b[p] == b'9' { b'0' } else { b[p] + 1 };
        *id = String::from_utf8(b).expect("ascii");
    }
    let refused = typed.iter().filter(|id| validate(id).is_err()).count();
    println!(
        "{} identifiers: {} of the {} with a changed digit refused",
        IDS,
        refused,
        IDS / 4
    );

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("trader-identifiers");
    g.throughput(Throughput::Elements(IDS as u64));
    g.bench_function("validate, valid ids of all five states", |b| {
        b.iter(|| {
            for id in &valid {
                black_box(validate(black_box(id)).is_ok());
            }
        })
    });
    g.bench_function("validate, one in four with a changed digit", |b| {
        b.iter(|| {
            for id in &typed {
                black_box(validate(black_box(id)).is_ok());
            }
        })
    });
    g.bench_function("parse (allocates the number), valid ids", |b| {
        b.iter(|| {
            for id in &valid {
                black_box(parse(black_box(id)).is_ok());
            }
        })
    });
    g.finish();
    c.final_summary();
}
