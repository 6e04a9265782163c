//! `tereze bench --json`, the figures the side-by-side suite (`scripts/bench`) reads: a tiny
//! run between two real nodes writes every field. Nothing here is timed against a goal.

mod net;

#[test]
fn bench_writes_its_figures_as_json_with_the_nodes_memory() {
    let dir = tempfile::tempdir().expect("dir");
    let json = dir.path().join("bench.json");
    let path = json.to_str().expect("utf-8");
    let (code, stdout, stderr) = net::tereze(&[
        "bench",
        "--messages",
        "20",
        "--concurrency",
        "4",
        "--base-port",
        "23700",
        "--timeout",
        "60",
        "--json",
        path,
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("node memory (RSS): KZ idle"), "{stdout}");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("json");
    assert_eq!(v["messages"], 20);
    assert_eq!(v["delivered"], 20);
    assert_eq!(v["bytes"], 4555);
    assert!(v["throughput"].as_f64().expect("throughput") > 0.0);
    for series in ["ack_ms", "e2e_ms"] {
        for p in ["p50", "p90", "p99", "p999", "max"] {
            assert!(v[series][p].as_f64().is_some(), "{series}.{p} in {v}");
        }
    }
    assert!(v["node_cpu_us_per_message"].as_f64().is_some(), "{v}");
    let nodes = v["nodes"].as_array().expect("nodes");
    let states: Vec<&str> = nodes.iter().filter_map(|n| n["state"].as_str()).collect();
    assert_eq!(states, ["KZ", "RU"]);
    for n in nodes {
        let idle = n["rss_idle_kib"].as_u64().expect("idle rss");
        let peak = n["rss_peak_kib"].as_u64().expect("peak rss");
        assert!(idle > 1024 && peak > 1024, "{n}");
    }
}
