//! The suite's figures, the parsing of what the other tools print, the ratios, the targets
//! and the Markdown tables. Nothing here measures; everything here is tested.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Why another tool's output could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("openssl speed printed no {0} line")]
    SpeedLine(&'static str),
    #[error("openssl speed: cannot read {what} from {line:?}")]
    SpeedNumber { what: &'static str, line: String },
    #[error("python results: {0}")]
    Python(#[from] serde_json::Error),
}

/// One XMLDSig row: operations (documents) per second, one thread.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DsigRow {
    pub size: String,
    pub bytes: usize,
    pub algorithm: String,
    /// "sign" or "verify".
    pub op: String,
    /// Tereze in process, "full" (bytes → parse → sign → bytes; bytes → parse → verify).
    pub tereze: f64,
    /// python-xmlsec "full", the same steps.
    pub python_full: Option<f64>,
    /// python-xmlsec "core" (trees parsed beforehand; context, key and sign/verify only).
    pub python_core: Option<f64>,
    /// `xmlsec1` processes per second (one document each, CA bundle not loaded).
    pub xmlsec1_cli: Option<f64>,
    /// `tereze xml sign|verify` processes per second (one document each).
    pub tereze_cli: Option<f64>,
}

/// `xmlsec1` with its default environment (it parses the system CA bundle at start).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CliDefaultRow {
    pub size: String,
    pub algorithm: String,
    pub op: String,
    pub xmlsec1_cli: f64,
}

/// Exclusive C14N of a whole document, MB/s of input.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct C14nRow {
    pub size: String,
    pub bytes: usize,
    pub tereze: f64,
    pub tereze_with_parse: f64,
    pub lxml: Option<f64>,
    pub lxml_with_parse: Option<f64>,
}

/// One relay case: Tereze's two nodes or the RabbitMQ durable queue.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RelayRow {
    /// "Tereze" or "RabbitMQ".
    pub system: String,
    /// "closed" (a window of messages in flight) or "open" (a fixed rate).
    pub mode: String,
    pub window: usize,
    pub rate: u64,
    pub messages: usize,
    pub delivered: usize,
    pub bytes: usize,
    pub throughput: f64,
    /// Tereze: submit acknowledged (stored with fsync at the sender). RabbitMQ: publisher
    /// confirm.
    pub ack_p50_ms: f64,
    pub ack_p99_ms: f64,
    /// Tereze: the receiver's signed receipt verified back at the sender. RabbitMQ: the
    /// message delivered to the consumer.
    pub e2e_p50_ms: f64,
    pub e2e_p99_ms: f64,
    /// Server-side CPU (both nodes, or the broker) per message.
    pub server_cpu_us: Option<f64>,
}

/// Resident set size of one server process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MemoryRow {
    pub process: String,
    pub idle_mb: Option<f64>,
    pub load_mb: Option<f64>,
}

/// `openssl speed` on one core.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Speed {
    pub ecdsa_sign: f64,
    pub ecdsa_verify: f64,
    pub rsa_sign: f64,
    pub rsa_verify: f64,
}

impl Speed {
    /// Microseconds of raw crypto per relayed message: ECDSA P-256 (sign + verify) × 2 (the
    /// envelope signed by the sender and verified by the receiver, the receipt signed by the
    /// receiver and verified by the sender).
    pub fn crypto_us_per_message(&self) -> f64 {
        2.0 * (1e6 / self.ecdsa_sign + 1e6 / self.ecdsa_verify)
    }

    /// Messages per second the crypto alone allows on `cores` cores.
    pub fn crypto_limit(&self, cores: usize) -> f64 {
        cores as f64 * 1e6 / self.crypto_us_per_message()
    }
}

fn last_two(line: &str, what: &'static str) -> Result<(f64, f64), ReportError> {
    let mut it = line.split_whitespace().rev();
    let bad = || ReportError::SpeedNumber {
        what,
        line: line.to_owned(),
    };
    let verify: f64 = it.next().and_then(|t| t.parse().ok()).ok_or_else(bad)?;
    let sign: f64 = it.next().and_then(|t| t.parse().ok()).ok_or_else(bad)?;
    Ok((sign, verify))
}

/// Reads the summary lines of `openssl speed ecdsap256 rsa2048` (OpenSSL 3):
/// `rsa 2048 bits 0.000255s 0.000015s   3914.3  67636.0` and
/// ` 256 bits ecdsa (nistp256)   0.0000s   0.0001s  52979.6  16826.0`.
pub fn parse_openssl_speed(output: &str) -> Result<Speed, ReportError> {
    let rsa = output
        .lines()
        .find(|l| {
            l.trim_start().starts_with("rsa 2048 bits") && l.trim_end().ends_with(char::is_numeric)
        })
        .ok_or(ReportError::SpeedLine("rsa 2048 bits"))?;
    let ec = output
        .lines()
        .find(|l| l.contains("ecdsa (nistp256)"))
        .ok_or(ReportError::SpeedLine("ecdsa (nistp256)"))?;
    let (rsa_sign, rsa_verify) = last_two(rsa, "rsa 2048 rates")?;
    let (ecdsa_sign, ecdsa_verify) = last_two(ec, "ecdsa p-256 rates")?;
    Ok(Speed {
        ecdsa_sign,
        ecdsa_verify,
        rsa_sign,
        rsa_verify,
    })
}

/// One document and key on the python side.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PyDsig {
    pub sign_full: f64,
    pub sign_core: f64,
    pub verify_full: f64,
    pub verify_core: f64,
}

/// lxml's exclusive C14N of one document, MB/s of input.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PyC14n {
    pub c14n: f64,
    pub parse_c14n: f64,
}

/// What `xmlsec_bench.py` prints (one JSON object).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PyResults {
    pub versions: BTreeMap<String, String>,
    /// Keyed "ecdsa/1 KB", "rsa/64 KB", …
    pub dsig: BTreeMap<String, PyDsig>,
    /// Keyed by size label.
    pub c14n: BTreeMap<String, PyC14n>,
    /// Cross-checks, e.g. "python verifies tereze ecdsa/4 KB": true.
    pub checks: BTreeMap<String, bool>,
}

impl PyResults {
    pub fn parse(json: &str) -> Result<Self, ReportError> {
        Ok(serde_json::from_str(json)?)
    }
}

/// What else used the machine during the run.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct OtherLoad {
    /// The 1-minute load average when the run started.
    pub load_at_start: f64,
    /// CPU used by processes outside this run, as a share of all cores over the run.
    pub other_share: f64,
    /// CPU taken by the hypervisor (steal), same unit.
    pub steal_share: f64,
}

/// Everything one run measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Suite {
    pub date: String,
    pub machine: String,
    pub cores: usize,
    pub versions: Vec<(String, String)>,
    pub dsig: Vec<DsigRow>,
    pub cli_default: Vec<CliDefaultRow>,
    pub c14n: Vec<C14nRow>,
    pub relay: Vec<RelayRow>,
    pub memory: Vec<MemoryRow>,
    pub speed: Option<Speed>,
    /// Sanity and cross checks: (what, passed).
    pub checks: Vec<(String, bool)>,
    /// Parts that could not run, and why.
    pub missing: Vec<String>,
    pub seconds: f64,
    pub other_load: Option<OtherLoad>,
}

/// `ours / theirs`, when both are there and theirs is positive.
pub fn ratio(ours: f64, theirs: Option<f64>) -> Option<f64> {
    match theirs {
        Some(t) if t > 0.0 && ours.is_finite() && t.is_finite() => Some(ours / t),
        _ => None,
    }
}

fn num(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let rounded = v.round() as i64;
    if v.abs() >= 1000.0 {
        let s = rounded.abs().to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        if rounded < 0 {
            out.insert(0, '-');
        }
        out
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or("–".into(), num)
}

fn times(r: Option<f64>) -> String {
    r.map_or("–".into(), |r| format!("**{r:.2}×**"))
}

/// One goal of the issue and whether this run met it.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub goal: String,
    pub measured: String,
    pub met: Option<bool>,
}

fn relay<'a>(s: &'a Suite, system: &str, mode: &str) -> Option<&'a RelayRow> {
    s.relay
        .iter()
        .find(|r| r.system == system && r.mode == mode)
}

fn dsig_goal(s: &Suite, op: &str, goal: f64) -> Target {
    let ratios: Vec<(String, f64)> = s
        .dsig
        .iter()
        .filter(|r| r.op == op)
        .filter_map(|r| {
            ratio(r.tereze, r.python_full).map(|x| (format!("{} {}", r.algorithm, r.size), x))
        })
        .collect();
    let worst = ratios.iter().min_by(|a, b| a.1.total_cmp(&b.1));
    Target {
        goal: format!("{op} ≥ {goal:.1}× python-xmlsec (every size and key)"),
        measured: match worst {
            Some((w, x)) => format!(
                "{:.2}×–{:.2}× (lowest: {w})",
                x,
                ratios.iter().map(|r| r.1).fold(f64::MIN, f64::max)
            ),
            None => "not measured".into(),
        },
        met: worst.map(|(_, x)| *x >= goal),
    }
}

/// The issue's targets against this run's figures.
pub fn targets(s: &Suite) -> Vec<Target> {
    let mut out = vec![dsig_goal(s, "sign", 1.5), dsig_goal(s, "verify", 1.0)];
    let ours = relay(s, "Tereze", "closed");
    let rabbit = relay(s, "RabbitMQ", "closed");
    out.push(Target {
        goal: "end to end ≥ 6,000 msg/s".into(),
        measured: ours.map_or("not measured".into(), |r| {
            format!("{} msg/s", num(r.throughput))
        }),
        met: ours.map(|r| r.throughput >= 6000.0),
    });
    let vs = ours.and_then(|o| ratio(o.throughput, rabbit.map(|r| r.throughput)));
    out.push(Target {
        goal: "end to end ≥ 1.0× RabbitMQ durable throughput".into(),
        measured: vs.map_or("not measured".into(), |x| format!("{x:.2}×")),
        met: vs.map(|x| x >= 1.0),
    });
    let open = relay(s, "Tereze", "open");
    out.push(Target {
        goal: "p99 ≤ 50 ms at 1,000 msg/s (end to end)".into(),
        measured: open.map_or("not measured".into(), |r| {
            format!("{} ms at {} msg/s", num(r.e2e_p99_ms), num(r.throughput))
        }),
        met: open.map(|r| r.e2e_p99_ms <= 50.0 && r.rate >= 1000),
    });
    out
}

/// The whole report as Markdown: the tables, the physical reference and the targets.
pub fn render(s: &Suite) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Measured {} in one run of {:.0} s on: {}.",
        s.date, s.seconds, s.machine
    );
    if let Some(l) = &s.other_load {
        let _ = writeln!(
            o,
            "Other load: 1-minute load average {:.2} at the start; during the run, processes outside the suite used {:.0}% and the hypervisor (steal) {:.0}% of the {} cores.",
            l.load_at_start,
            100.0 * l.other_share,
            100.0 * l.steal_share,
            s.cores
        );
    }
    if !s.versions.is_empty() {
        let v: Vec<String> = s.versions.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(o, "Versions: {}.", v.join(", "));
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "### 1. XMLDSig, documents per second (one thread; ratio = Tereze ÷ other)"
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "| key | op | size | Tereze | python-xmlsec full | ratio | python-xmlsec core | `tereze xml` CLI | `xmlsec1` CLI | CLI ratio |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|");
    for r in &s.dsig {
        let cli = r.tereze_cli.and_then(|t| ratio(t, r.xmlsec1_cli));
        let _ = writeln!(
            o,
            "| {} | {} | {} ({} B) | {} | {} | {} | {} | {} | {} | {} |",
            r.algorithm,
            r.op,
            r.size,
            r.bytes,
            num(r.tereze),
            opt(r.python_full),
            times(ratio(r.tereze, r.python_full)),
            opt(r.python_core),
            opt(r.tereze_cli),
            opt(r.xmlsec1_cli),
            times(cli)
        );
    }
    if !s.cli_default.is_empty() {
        let _ = writeln!(o);
        let rows: Vec<String> = s
            .cli_default
            .iter()
            .map(|r| {
                format!(
                    "{} {} {}: {} proc/s ({:.1} ms)",
                    r.algorithm,
                    r.op,
                    r.size,
                    num(r.xmlsec1_cli),
                    1e3 / r.xmlsec1_cli
                )
            })
            .collect();
        let _ = writeln!(
            o,
            "`xmlsec1` CLI with its default environment (loads the system CA bundle at start): {}.",
            rows.join("; ")
        );
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "### 2. Exclusive C14N 1.0, whole document, MB/s of input (one thread)"
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "| size | Tereze | lxml | ratio | Tereze parse + C14N | lxml parse + C14N | ratio |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|");
    for r in &s.c14n {
        let _ = writeln!(
            o,
            "| {} ({} B) | {} | {} | {} | {} | {} | {} |",
            r.size,
            r.bytes,
            num(r.tereze),
            opt(r.lxml),
            times(ratio(r.tereze, r.lxml)),
            num(r.tereze_with_parse),
            opt(r.lxml_with_parse),
            times(ratio(r.tereze_with_parse, r.lxml_with_parse))
        );
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "### 3. Durable relay on loopback");
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "| system | case | delivered | msg/s | ratio to RabbitMQ | durable ack p50 / p99 ms | end to end p50 / p99 ms | server CPU per msg |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|");
    for r in &s.relay {
        let case = if r.mode == "open" {
            format!("open loop, {} msg/s", num(r.rate as f64))
        } else {
            format!("closed loop, window {}", r.window)
        };
        let theirs = relay(s, "RabbitMQ", &r.mode).map(|x| x.throughput);
        let vs = if r.system == "RabbitMQ" || r.mode == "open" {
            "–".into()
        } else {
            times(ratio(r.throughput, theirs))
        };
        let _ = writeln!(
            o,
            "| {} | {} | {}/{} × {} B | {} | {} | {} / {} | {} / {} | {} |",
            r.system,
            case,
            r.delivered,
            r.messages,
            r.bytes,
            num(r.throughput),
            vs,
            num(r.ack_p50_ms),
            num(r.ack_p99_ms),
            num(r.e2e_p50_ms),
            num(r.e2e_p99_ms),
            r.server_cpu_us
                .map_or("–".into(), |c| format!("{} µs", num(c)))
        );
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "### 4. Memory, resident set size");
    let _ = writeln!(o);
    let _ = writeln!(o, "| process | idle MB | peak under load MB |");
    let _ = writeln!(o, "|---|---|---|");
    for m in &s.memory {
        let _ = writeln!(
            o,
            "| {} | {} | {} |",
            m.process,
            opt(m.idle_mb),
            opt(m.load_mb)
        );
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "### Physical reference: `openssl speed` (one core)");
    let _ = writeln!(o);
    match &s.speed {
        Some(sp) => {
            let _ = writeln!(
                o,
                "ECDSA P-256 {} sign/s and {} verify/s; RSA-2048 {} sign/s and {} verify/s.",
                num(sp.ecdsa_sign),
                num(sp.ecdsa_verify),
                num(sp.rsa_sign),
                num(sp.rsa_verify)
            );
            let limit = sp.crypto_limit(s.cores);
            let _ = write!(
                o,
                "Per relayed message, ECDSA P-256 (sign + verify) × 2 = {:.0} µs of crypto: at most {} msg/s per core, {} msg/s on {} cores.",
                sp.crypto_us_per_message(),
                num(sp.crypto_limit(1)),
                num(limit),
                s.cores
            );
            if let Some(r) = relay(s, "Tereze", "closed") {
                let _ = write!(
                    o,
                    " Tereze end to end: {} msg/s = **{:.0}%** of that limit.",
                    num(r.throughput),
                    100.0 * r.throughput / limit
                );
            }
            let _ = writeln!(o);
        }
        None => {
            let _ = writeln!(o, "not measured");
        }
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "### Targets");
    let _ = writeln!(o);
    let _ = writeln!(o, "| goal | measured | |");
    let _ = writeln!(o, "|---|---|---|");
    for t in targets(s) {
        let verdict = match t.met {
            Some(true) => "met",
            Some(false) => "**short**",
            None => "not measured",
        };
        let _ = writeln!(o, "| {} | {} | {} |", t.goal, t.measured, verdict);
    }
    if !s.checks.is_empty() {
        let _ = writeln!(o);
        let passed = s.checks.iter().filter(|c| c.1).count();
        let _ = write!(o, "Checks: {passed}/{} passed", s.checks.len());
        let failed: Vec<&str> = s
            .checks
            .iter()
            .filter(|c| !c.1)
            .map(|c| c.0.as_str())
            .collect();
        if failed.is_empty() {
            let _ = writeln!(o, ".");
        } else {
            let _ = writeln!(o, "; FAILED: {}.", failed.join("; "));
        }
    }
    for m in &s.missing {
        let _ = writeln!(o, "\nNot measured: {m}");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEED: &str = "\
Doing 2048 bits private rsa's for 3s: 11743 2048 bits private RSA's in 3.00s
Doing 2048 bits public rsa's for 3s: 202908 2048 bits public RSA's in 3.00s
Doing 256 bits sign ecdsa's for 3s: 158409 256 bits ECDSA signs in 2.99s
Doing 256 bits verify ecdsa's for 3s: 50478 256 bits ECDSA verify in 3.00s
version: 3.0.19
                  sign    verify    sign/s verify/s
rsa 2048 bits 0.000255s 0.000015s   3914.3  67636.0
                              sign    verify    sign/s verify/s
 256 bits ecdsa (nistp256)   0.0000s   0.0001s  52979.6  16826.0
";

    #[test]
    fn reads_openssl_speed_and_computes_the_crypto_limit() {
        let s = parse_openssl_speed(SPEED).expect("parses");
        assert_eq!(s.rsa_sign, 3914.3);
        assert_eq!(s.rsa_verify, 67636.0);
        assert_eq!(s.ecdsa_sign, 52979.6);
        assert_eq!(s.ecdsa_verify, 16826.0);
        // 2 × (18.9 + 59.4) µs = 156.6 µs: 6,386 msg/s per core.
        assert!((s.crypto_us_per_message() - 156.6).abs() < 0.1);
        assert!((s.crypto_limit(2) - 12_772.0).abs() < 5.0);
        assert!(parse_openssl_speed("nothing here").is_err());
        assert!(parse_openssl_speed(&SPEED.replace("52979.6", "fast")).is_err());
    }

    #[test]
    fn reads_the_python_results() {
        let json = r#"{"versions": {"python-xmlsec": "1.3.17"},
            "dsig": {"ecdsa/4 KB": {"sign_full": 4652.0, "sign_core": 7068.0,
                                     "verify_full": 4372.0, "verify_core": 5449.0}},
            "c14n": {"4 KB": {"c14n": 120.5, "parse_c14n": 60.0}},
            "checks": {"python verifies tereze ecdsa/4 KB": true}}"#;
        let r = PyResults::parse(json).expect("parses");
        assert_eq!(r.dsig["ecdsa/4 KB"].sign_full, 4652.0);
        assert_eq!(r.c14n["4 KB"].parse_c14n, 60.0);
        assert!(r.checks["python verifies tereze ecdsa/4 KB"]);
        assert!(PyResults::parse("{").is_err());
    }

    #[test]
    fn ratios_need_both_sides() {
        assert_eq!(ratio(3.0, Some(2.0)), Some(1.5));
        assert_eq!(ratio(3.0, None), None);
        assert_eq!(ratio(3.0, Some(0.0)), None);
        assert_eq!(ratio(f64::NAN, Some(1.0)), None);
    }

    #[test]
    fn numbers_are_grouped_and_rounded() {
        assert_eq!(num(14618.4), "14,618");
        assert_eq!(num(1234567.0), "1,234,567");
        assert_eq!(num(215.4), "215");
        assert_eq!(num(15.94), "15.9");
        assert_eq!(num(1.523), "1.52");
        assert_eq!(num(f64::NAN), "–");
    }

    fn sample() -> Suite {
        Suite {
            date: "2026-12-03".into(),
            machine: "2 vCPU".into(),
            cores: 2,
            dsig: vec![
                DsigRow {
                    size: "4 KB".into(),
                    bytes: 4000,
                    algorithm: "ECDSA P-256".into(),
                    op: "sign".into(),
                    tereze: 8000.0,
                    python_full: Some(4000.0),
                    python_core: Some(7000.0),
                    xmlsec1_cli: Some(200.0),
                    tereze_cli: Some(400.0),
                },
                DsigRow {
                    size: "4 KB".into(),
                    bytes: 4000,
                    algorithm: "ECDSA P-256".into(),
                    op: "verify".into(),
                    tereze: 3000.0,
                    python_full: Some(4000.0),
                    ..Default::default()
                },
            ],
            relay: vec![
                RelayRow {
                    system: "Tereze".into(),
                    mode: "closed".into(),
                    window: 128,
                    messages: 100,
                    delivered: 100,
                    bytes: 4555,
                    throughput: 2000.0,
                    ..Default::default()
                },
                RelayRow {
                    system: "RabbitMQ".into(),
                    mode: "closed".into(),
                    window: 128,
                    messages: 100,
                    delivered: 100,
                    bytes: 4555,
                    throughput: 16000.0,
                    ..Default::default()
                },
                RelayRow {
                    system: "Tereze".into(),
                    mode: "open".into(),
                    rate: 1000,
                    throughput: 999.0,
                    e2e_p99_ms: 30.0,
                    ..Default::default()
                },
            ],
            speed: parse_openssl_speed(SPEED).ok(),
            checks: vec![("a".into(), true), ("b".into(), false)],
            other_load: Some(OtherLoad {
                load_at_start: 0.25,
                other_share: 0.031,
                steal_share: 0.0,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn targets_compare_each_goal_with_its_figure() {
        let t = targets(&sample());
        assert_eq!(t.len(), 5);
        assert_eq!(t[0].met, Some(true), "{t:?}"); // sign 2.0×
        assert_eq!(t[1].met, Some(false), "{t:?}"); // verify 0.75×
        assert_eq!(t[2].met, Some(false)); // 2,000 msg/s
        assert_eq!(t[3].met, Some(false)); // 0.125× RabbitMQ
        assert_eq!(t[3].measured, "0.12×");
        assert_eq!(t[4].met, Some(true)); // 30 ms at 1,000 msg/s
        let empty = targets(&Suite::default());
        assert!(empty.iter().all(|t| t.met.is_none()));
    }

    #[test]
    fn the_report_has_every_table_with_its_ratios() {
        let md = render(&sample());
        for part in [
            "### 1. XMLDSig",
            "### 2. Exclusive C14N",
            "### 3. Durable relay",
            "### 4. Memory",
            "### Physical reference",
            "### Targets",
        ] {
            assert!(md.contains(part), "{part} missing:\n{md}");
        }
        assert!(md.contains("| ECDSA P-256 | sign | 4 KB (4000 B) | 8,000 | 4,000 | **2.00×** | 7,000 | 400 | 200 | **2.00×** |"), "{md}");
        assert!(md.contains("**0.12×**"), "{md}");
        // 2,000 of the 12,772 msg/s crypto limit on 2 cores.
        assert!(md.contains("= **16%** of that limit"), "{md}");
        assert!(md.contains("Checks: 1/2 passed; FAILED: b."), "{md}");
        assert!(md.contains("load average 0.25 at the start; during the run, processes outside the suite used 3% and the hypervisor (steal) 0% of the 2 cores"), "{md}");
    }
}
