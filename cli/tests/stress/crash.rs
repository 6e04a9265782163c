//! Crash safety with real processes: a sender (KZ) and a receiver (RU) exchange thousands of
//! messages while each side is killed with SIGKILL at random moments and restarted. Afterwards
//! every message the sender acknowledged to its national system is in the receiver's inbox
//! exactly once, and recognised at the sender.

use std::time::Duration;

use crate::net::{self, wait_until, Net};

#[test]
fn every_acknowledged_message_arrives_exactly_once_through_repeated_kill_9() {
    let _machine = net::machine_alone();
    let messages: usize = net::setting("TEREZE_CRASH_MESSAGES", 2_000);
    let extra = "\n[relay]\nmin_backoff_ms = 50\nmax_backoff_ms = 500\n[limits]\nmax_inbox_pull = 1000000\n";
    let mut net = Net::init("KZ,RU", "", "", 19500, extra);
    net.start("KZ");
    net.start("RU");
    let http_kz = net.http_port("KZ");

    let flood = net::Flood::start(http_kz, "RU", messages, 4);

    // Kill each side, and both, at random moments while messages flow.
    let mut kills = 0;
    while !flood.is_done() || kills < 6 {
        std::thread::sleep(Duration::from_millis(150 + net::random(600)));
        let victims: &[&str] = match net::random(3) {
            0 => &["KZ"],
            1 => &["RU"],
            _ => &["KZ", "RU"],
        };
        for v in victims {
            net.kill9(v);
        }
        std::thread::sleep(Duration::from_millis(50 + net::random(250)));
        for v in victims {
            net.start(v);
        }
        kills += 1;
        if kills >= 30 {
            break;
        }
    }
    let acknowledged = flood.join();
    assert!(acknowledged.len() >= messages);

    assert!(
        wait_until(Duration::from_secs(240), || net
            .metric("KZ", "outbox_messages")
            == 0),
        "the outbox did not drain ({} left)",
        net.metric("KZ", "outbox_messages")
    );
    let in_inbox = net.assert_exactly_once("RU", &acknowledged);
    // The sender knows each one as delivered and recognised (a sample: each costs a request).
    for id in acknowledged.iter().step_by(50) {
        assert_eq!(
            net.states("KZ", id).last().map(String::as_str),
            Some("recognised"),
            "{id}: {:?}",
            net.states("KZ", id)
        );
    }
    eprintln!(
        "{} acknowledged, {} in RU's inbox (unacknowledged submissions that were stored before a kill also arrive), {kills} kill rounds",
        acknowledged.len(),
        in_inbox
    );
}
