//! High availability with real processes (issue 12): two replicas of Kazakhstan's node share
//! one PostgreSQL store (a real server started for the test as an unprivileged user) and send
//! to Russia's node. The national system submits to either replica, as it would behind one
//! address; one replica is killed with SIGKILL in the middle of the flow and not restarted.
//! The other takes over its claimed messages when their leases end; afterwards every message
//! either replica acknowledged is in RU's inbox exactly once, the shared outbox is empty and
//! the shared audit chain verifies. A second test kills the database itself.

use std::time::Duration;

use tereze_testkit::pgcluster::PgCluster;

use crate::net::{self, http, wait_until, Net};

#[test]
fn two_replicas_on_postgresql_one_killed_9_under_load_lose_and_repeat_nothing() {
    let messages: usize = std::env::var("TEREZE_HA_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_500);
    let pg = PgCluster::start().expect("PostgreSQL starts");
    let url = pg.create_database("kz").expect("database");

    let extra = "\n[relay]\nmin_backoff_ms = 50\nmax_backoff_ms = 500\ntimeout_seconds = 3\n[limits]\nmax_inbox_pull = 1000000\n";
    let mut net = Net::init("KZ,RU", "", "", 19700, extra);
    net.configure("KZ", &format!("store = \"{url}\"\nstore_lease_seconds = 5"));
    net.add_replica("KZ", "KZB");
    net.start("KZ");
    net.start("KZB");
    net.start("RU");
    let ports = [net.http_port("KZ"), net.http_port("KZB")];

    let flood = net::Flood::spread(&ports, "RU", messages, 4);

    // Kill replica A once a third of the flow is acknowledged, while it holds claimed work.
    assert!(
        wait_until(Duration::from_secs(120), || flood.count() >= messages / 3),
        "the flow did not start: {}",
        net.log("KZ")
    );
    let killed_at = flood.count();
    net.kill9("KZ");
    let taken_by = flood.taken_by.clone();
    let ids = flood.join();
    let acknowledged: Vec<(String, u16)> = ids
        .iter()
        .cloned()
        .zip(taken_by.lock().expect("lock").iter().copied())
        .collect();
    let by_a = acknowledged.iter().filter(|(_, p)| *p == ports[0]).count();
    assert!(by_a > 0, "replica A acknowledged nothing before its kill");
    assert!(
        acknowledged.len() - by_a > 0,
        "replica B acknowledged nothing"
    );

    // Replica B drains the shared outbox, A's leased messages included once their leases end.
    assert!(
        wait_until(Duration::from_secs(180), || net
            .metric("KZB", "outbox_messages")
            == 0),
        "the shared outbox did not drain ({} left): {}",
        net.metric("KZB", "outbox_messages"),
        net.log("KZB")
    );
    let in_inbox = net.assert_exactly_once("RU", &ids);
    // The surviving replica knows each message A took as delivered and recognised.
    for (id, _) in acknowledged
        .iter()
        .filter(|(_, p)| *p == ports[0])
        .step_by(25)
    {
        assert_eq!(
            net.states("KZB", id).last().map(String::as_str),
            Some("recognised"),
            "{id}: {:?}",
            net.states("KZB", id)
        );
    }
    net.stop("KZB");
    let (code, out, err) = net::tereze(&["audit", "verify", "--store", &url]);
    assert_eq!(code, 0, "the shared audit chain: {out}{err}");
    assert!(out.contains("intact"), "{out}");
    eprintln!(
        "{} acknowledged ({by_a} by replica A, killed after {killed_at}), {in_inbox} in RU's inbox",
        acknowledged.len()
    );
}

#[test]
fn the_database_killed_9_and_restarted_under_load_loses_nothing_acknowledged() {
    let messages: usize = std::env::var("TEREZE_HA_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let mut pg = PgCluster::start().expect("PostgreSQL starts");
    let url = pg.create_database("kz").expect("database");
    let extra = "\n[relay]\nmin_backoff_ms = 50\nmax_backoff_ms = 500\ntimeout_seconds = 3\n[limits]\nmax_inbox_pull = 1000000\n";
    let mut net = Net::init("KZ,RU", "", "", 19740, extra);
    net.configure("KZ", &format!("store = \"{url}\"\nstore_lease_seconds = 5"));
    net.start("KZ");
    net.start("RU");
    let port = net.http_port("KZ");
    let flood = net::Flood::start(port, "RU", messages, 4);
    assert!(
        wait_until(Duration::from_secs(120), || flood.count() >= messages / 3),
        "the flow did not start: {}",
        net.log("KZ")
    );
    // The database crashes (a failover would look the same to the node: the address stops
    // answering, then answers again).
    pg.kill9();
    std::thread::sleep(Duration::from_millis(1_500));
    // Meanwhile the node refuses new work with a retryable status and says why.
    let (status, body) = http(
        port,
        "POST",
        "/v1/messages",
        Some(&serde_json::json!({
            "format": "eaeu.export-declaration",
            "document": net::SAMPLE,
            "recipient_country": "RU",
        })),
    );
    assert_eq!(status, 503, "{body}");
    assert!(body.to_string().contains("store"), "{body}");
    let (ready, _) = http(port, "GET", "/readyz", None);
    assert_eq!(ready, 503, "not ready without its database");
    pg.start_again().expect("PostgreSQL starts again");
    let acknowledged = flood.join();
    assert!(
        !net.exited("KZ"),
        "the node rode out the database's absence"
    );
    assert!(
        wait_until(Duration::from_secs(180), || net
            .metric("KZ", "outbox_messages")
            == 0),
        "the outbox did not drain ({} left): {}",
        net.metric("KZ", "outbox_messages"),
        net.log("KZ")
    );
    net.assert_exactly_once("RU", &acknowledged);
    let (ready, _) = http(port, "GET", "/readyz", None);
    assert_eq!(ready, 200, "ready again");
    net.stop("KZ");
    let (code, out, err) = net::tereze(&["audit", "verify", "--store", &url]);
    assert_eq!(code, 0, "the audit chain after the crash: {out}{err}");
}
