//! Profiling aid: signs or verifies one of the suite's documents N times in process, as the
//! suite measures it. `cargo build --profile profiling -p tereze-bench --example profile_dsig`,
//! then `valgrind --tool=callgrind target/profiling/examples/profile_dsig verify ecdsa 1 2000`.

use std::time::Instant;

use tereze_bench::docs;
use tereze_bench::measure::{self, Algorithm, KeyMaterial};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let op = args.get(1).map_or("verify", String::as_str);
    let algorithm = match args.get(2).map_or("ecdsa", String::as_str) {
        "rsa" => Algorithm::Rsa2048,
        _ => Algorithm::EcdsaP256,
    };
    let size: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let n: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let doc = docs::invoice(size * 1024);
    let key = KeyMaterial::generate(algorithm)?;
    let signed = measure::sign_full(&doc, &key.bare)?;
    let t = Instant::now();
    for _ in 0..n {
        if op == "sign" {
            std::hint::black_box(measure::sign_full(&doc, &key.bare)?);
        } else {
            measure::verify_full(&signed, &key.trust_key)?;
        }
    }
    let per = t.elapsed().as_secs_f64() / n as f64;
    println!(
        "{op} {} {size} KB: {:.1} µs each, {:.0}/s",
        algorithm.label(),
        per * 1e6,
        1.0 / per
    );
    Ok(())
}
