//! The crash campaign (issue 11, docs/reliability.md): a sender (KZ), the Commission's hub
//! (EEC) and a receiver (RU) carry a flow of messages KZ → EEC → RU while the three processes
//! are killed with SIGKILL at random moments and restarted. Afterwards every message KZ
//! acknowledged to its national system is in RU's inbox exactly once, KZ knows each as
//! recognised (the end receipt came back through the hub), and every node's audit chain
//! verifies. Sized by TEREZE_CHAOS_MESSAGES (10,000) and TEREZE_CHAOS_KILLS (50); a longer
//! campaign is `deploy/chaos` (release build, more of both).

use std::time::{Duration, Instant};

use crate::net::{self, wait_until, Net};

#[test]
fn fifty_kill_9_of_sender_hub_and_receiver_lose_and_duplicate_nothing() {
    let _machine = net::machine_alone();
    let messages: usize = net::setting("TEREZE_CHAOS_MESSAGES", 10_000);
    let kills_wanted: usize = net::setting("TEREZE_CHAOS_KILLS", 50);
    let base = net::setting::<usize>("TEREZE_CHAOS_PORT_BASE", 23500) as u16;
    let extra = "\n[relay]\nmin_backoff_ms = 50\nmax_backoff_ms = 1000\n[limits]\nmax_inbox_pull = 1000000\n";
    let mut net = Net::init("KZ,RU", "EEC", "KZ,RU", base, extra);
    for s in ["EEC", "KZ", "RU"] {
        net.start(s);
    }
    let http_kz = net.http_port("KZ");
    let started = Instant::now();

    let flood = net::Flood::start(http_kz, "RU", messages, 4);

    // Spread the kills over the flow: kill number k comes once k/kills of the messages are
    // acknowledged, at a random moment after that; one node or two at once.
    let mut kills = 0;
    let mut rounds = 0;
    let mut by_node = [0usize; 3];
    const NODES: [&str; 3] = ["KZ", "EEC", "RU"];
    while kills < kills_wanted {
        let due = kills * messages / kills_wanted;
        while flood.count() < due && !flood.is_done() {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(net::random(300)));
        let first = net::random(3) as usize;
        let mut victims = vec![first];
        if net::random(4) == 0 && kills + 1 < kills_wanted {
            victims.push((first + 1 + net::random(2) as usize) % 3);
        }
        for v in &victims {
            net.kill9(NODES[*v]);
            by_node[*v] += 1;
            kills += 1;
        }
        std::thread::sleep(Duration::from_millis(net::random(400)));
        for v in &victims {
            net.start(NODES[*v]);
        }
        rounds += 1;
    }
    let flow_done_during_kills = flood.is_done();
    let acknowledged = flood.join();
    assert!(acknowledged.len() >= messages);
    let submitted_in = started.elapsed();

    assert!(
        wait_until(Duration::from_secs(600), || {
            net.metric("KZ", "outbox_messages") == 0
                && net.metric("EEC", "outbox_messages") == 0
                && net.metric("KZ", "awaiting_receipts") == 0
        }),
        "not drained: KZ outbox {}, EEC outbox {}, KZ awaiting {}",
        net.metric("KZ", "outbox_messages"),
        net.metric("EEC", "outbox_messages"),
        net.metric("KZ", "awaiting_receipts")
    );
    let drained_in = started.elapsed();
    let in_inbox = net.assert_exactly_once("RU", &acknowledged);
    // The end receipts came back through the hub (a sample: each costs a request).
    for id in acknowledged.iter().step_by(97) {
        assert_eq!(
            net.states("KZ", id).last().map(String::as_str),
            Some("recognised"),
            "{id}: {:?}",
            net.states("KZ", id)
        );
    }
    // Every chain verifies, with its checkpoints, after all that.
    for s in NODES {
        net.stop(s);
        let (code, report) = net.audit_verify(s);
        assert_eq!(code, 0, "{s}: {report}");
    }
    eprintln!(
        "chaos: {} acknowledged, {} in RU's inbox, 0 lost, 0 twice; {kills} kills in {rounds} rounds (KZ {}, EEC {}, RU {}); flow {}finished during the kills; submitted in {:.0} s, drained in {:.0} s; audit chains verify",
        acknowledged.len(),
        in_inbox,
        by_node[0],
        by_node[1],
        by_node[2],
        if flow_done_during_kills { "" } else { "not " },
        submitted_in.as_secs_f64(),
        drained_in.as_secs_f64()
    );
}
