//! Time-stamping throughput with batching (issue 26): how many signature values per second a
//! node can get covered by tokens from the test authority (`openssl ts -reply` behind HTTP,
//! testkit's `tsa`), for batches of 1, 16 and 256 values, and how fast the evidence verifies.
//! Run by `scripts/bench` (release build); not a test. Figures: BENCHMARKS.md.
//!
//! `cargo run --release -p tereze-timestamp --example throughput -- [VALUES]` (default 1000).

use std::time::{Duration, Instant};

use tereze_testkit::tsa::TestAuthority;
use tereze_timestamp::{batch, Authority, Client, Evidence};

fn main() {
    let values: usize = std::env::args()
        .nth(1)
        .map(|v| v.parse().expect("VALUES: a number of signature values"))
        .unwrap_or(1000);
    let tsa = TestAuthority::new();
    let authorities = [
        Authority::from_pem("KZ", &tsa.url(), tsa.ca_pem().as_bytes())
            .expect("the test authority's CA"),
    ];
    let client = Client::new(&tsa.url(), Duration::from_secs(30)).expect("client");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // ECDSA P-256 signature values are 64 bytes.
    let signatures: Vec<Vec<u8>> = (0..values)
        .map(|i| (0..64).map(|k| (i.wrapping_mul(131) + k) as u8).collect())
        .collect();

    println!("| batch size | tokens | seconds | tokens/s | signature values covered/s | evidence verified/s |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for size in [1usize, 16, 256] {
        let started = Instant::now();
        let mut evidence = Vec::with_capacity(values);
        let mut tokens = 0;
        for chunk in signatures.chunks(size) {
            let (imprint, paths) = batch(chunk);
            let token = rt
                .block_on(client.stamp(&imprint))
                .expect("a token from the test authority");
            tokens += 1;
            for (value, path) in chunk.iter().zip(paths) {
                evidence.push((value, Evidence::new(token.clone(), path).to_bytes()));
            }
        }
        let obtained = started.elapsed();
        let started = Instant::now();
        for (value, bytes) in &evidence {
            Evidence::from_bytes(bytes)
                .and_then(|e| e.verify(value, &authorities))
                .expect("evidence verifies");
        }
        let verified = started.elapsed();
        let secs = obtained.as_secs_f64();
        println!(
            "| {size} | {tokens} | {secs:.2} | {:.0} | {:.0} | {:.0} |",
            tokens as f64 / secs,
            values as f64 / secs,
            values as f64 / verified.as_secs_f64()
        );
    }
    println!(
        "\n{values} signature values; {} requests served by the authority",
        tsa.answered()
    );
}
