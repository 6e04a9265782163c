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
    #[error("openssl speed -evp {digest}: {why}")]
    DigestSpeed { digest: String, why: String },
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

/// `openssl speed -evp DIGEST`: bytes per second at each block size it timed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DigestSpeed {
    /// OpenSSL's name, e.g. `md_gost12_256`.
    pub digest: String,
    /// (block size in bytes, bytes per second), smallest block first.
    pub blocks: Vec<(usize, f64)>,
}

impl DigestSpeed {
    /// Seconds to hash `len` bytes, at the rate of the largest block not above `len` (the
    /// smallest block's for shorter inputs).
    pub fn seconds(&self, len: usize) -> f64 {
        let rate = self
            .blocks
            .iter()
            .rev()
            .find(|(block, _)| *block <= len)
            .or(self.blocks.first())
            .map_or(f64::NAN, |(_, r)| *r);
        len as f64 / rate
    }

    /// Megabytes per second on the largest block.
    pub fn mb_per_second(&self) -> f64 {
        self.blocks.last().map_or(f64::NAN, |(_, r)| r / 1e6)
    }
}

/// Reads the table `openssl speed -evp DIGEST` prints (OpenSSL 3): a header
/// `type  16 bytes  64 bytes …` and a line `md_gost12_256  10209.29k  32414.80k …` in 1000s of
/// bytes per second.
pub fn parse_digest_speed(output: &str, digest: &str) -> Result<DigestSpeed, ReportError> {
    let err = |why: String| ReportError::DigestSpeed {
        digest: digest.to_owned(),
        why,
    };
    let header = output
        .lines()
        .find(|l| l.starts_with("type") && l.contains("bytes"))
        .ok_or_else(|| err("no table header".into()))?;
    let sizes: Vec<usize> = header
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    let line = output
        .lines()
        .find(|l| l.split_whitespace().next() == Some(digest))
        .ok_or_else(|| err("no result line".into()))?;
    let rates: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|t| {
            t.strip_suffix('k')
                .and_then(|n| n.parse::<f64>().ok())
                .map(|k| k * 1000.0)
                .ok_or_else(|| err(format!("cannot read {t:?}")))
        })
        .collect::<Result<_, _>>()?;
    if sizes.is_empty() || sizes.len() != rates.len() {
        return Err(err(format!(
            "{} block sizes but {} rates",
            sizes.len(),
            rates.len()
        )));
    }
    Ok(DigestSpeed {
        digest: digest.to_owned(),
        blocks: sizes.into_iter().zip(rates).collect(),
    })
}

/// The GOST crypto limit of one key size: the signature primitive timed in process (OpenSSL
/// and its GOST engine; `openssl speed` has no GOST signature test) and Streebog from `openssl
/// speed -evp`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GostSpeed {
    pub algorithm: String,
    /// `EVP_PKEY_sign` over a digest, per second, one thread: the best of the measurements
    /// (each row's limit uses the one made beside it).
    pub raw_sign: f64,
    /// `EVP_PKEY_verify`, per second, one thread, likewise.
    pub raw_verify: f64,
    pub digest: DigestSpeed,
}

impl GostSpeed {
    /// Documents per second the cryptography alone allows for `op` ("sign" or "verify") of a
    /// document of `bytes` whose canonical `SignedInfo` has `signed_info` bytes: one signature
    /// operation, the document's digest and the `SignedInfo`'s.
    pub fn document_limit(&self, op: &str, bytes: usize, signed_info: usize) -> f64 {
        let primitive = if op == "sign" {
            self.raw_sign
        } else {
            self.raw_verify
        };
        self.limit_with(primitive, bytes, signed_info)
    }

    /// [`document_limit`](Self::document_limit) with a primitive rate measured elsewhere
    /// (beside the row it limits).
    pub fn limit_with(&self, primitive: f64, bytes: usize, signed_info: usize) -> f64 {
        1.0 / (1.0 / primitive + self.digest.seconds(bytes) + self.digest.seconds(signed_info))
    }

    /// Microseconds of signature primitives per relayed message: (sign + verify) × 2 (the
    /// envelope and the receipt), as for ECDSA in [`Speed::crypto_us_per_message`].
    pub fn crypto_us_per_message(&self) -> f64 {
        2.0 * (1e6 / self.raw_sign + 1e6 / self.raw_verify)
    }
}

/// One GOST XMLDSig row: Tereze in process against the crypto limit.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GostRow {
    pub size: String,
    pub bytes: usize,
    pub algorithm: String,
    pub op: String,
    /// Tereze in process, "full" (bytes → parse → sign → bytes; bytes → parse → verify).
    pub tereze: f64,
    /// Bytes of the canonical `SignedInfo`.
    pub signed_info: usize,
    /// The signature primitive per second, measured right before this row (so both see the
    /// same machine).
    pub primitive: f64,
    /// Documents per second the cryptography alone allows ([`GostSpeed::document_limit`]).
    pub limit: Option<f64>,
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
    /// GOST R 34.10-2012 XMLDSig (issue 25) and its crypto limit per key size.
    pub gost: Vec<GostRow>,
    pub gost_speed: Vec<GostSpeed>,
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

/// The relay row of Tereze with keys of `algorithm` (the GOST run), closed loop.
fn relay_with<'a>(s: &'a Suite, algorithm: &str) -> Option<&'a RelayRow> {
    s.relay
        .iter()
        .find(|r| r.mode == "closed" && r.system == format!("Tereze ({algorithm})"))
}

/// Table 1b: GOST R 34.10-2012 against its crypto limit, with the ECDSA figure of table 1.
fn render_gost(o: &mut String, s: &Suite) {
    if s.gost.is_empty() && s.gost_speed.is_empty() {
        return;
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "### 1b. GOST R 34.10-2012 XMLDSig, documents per second (one thread; against the crypto limit)"
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "| key | op | size | Tereze | crypto limit | Tereze ÷ limit | Tereze, ECDSA P-256 (table 1) |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|");
    for r in &s.gost {
        let ecdsa = s
            .dsig
            .iter()
            .find(|d| d.algorithm == "ECDSA P-256" && d.op == r.op && d.size == r.size)
            .map(|d| d.tereze);
        let share = r
            .limit
            .and_then(|l| ratio(r.tereze, Some(l)))
            .map_or("–".into(), |x| format!("**{:.0}%**", 100.0 * x));
        let _ = writeln!(
            o,
            "| {} | {} | {} ({} B) | {} | {} | {} | {} |",
            r.algorithm,
            r.op,
            r.size,
            r.bytes,
            num(r.tereze),
            opt(r.limit),
            share,
            opt(ecdsa)
        );
    }
    for g in &s.gost_speed {
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "Crypto limit, {}: the signature primitive up to {} sign/s and {} verify/s (`EVP_PKEY_sign`/`EVP_PKEY_verify` over a digest, timed in process through OpenSSL and its GOST engine, right before each row: `openssl speed` has no GOST signature test), Streebog ({}) {} MB/s (`openssl speed -evp {}`, largest block); per document one primitive plus Streebog over the document and the canonical `SignedInfo`.",
            g.algorithm,
            num(g.raw_sign),
            num(g.raw_verify),
            g.digest.digest,
            num(g.digest.mb_per_second()),
            g.digest.digest
        );
    }
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
    render_gost(&mut o, s);
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
    for g in &s.gost_speed {
        let per_message = g.crypto_us_per_message();
        let limit = s.cores as f64 * 1e6 / per_message;
        let _ = write!(
            o,
            "\nPer relayed message with {} keys, (sign + verify) × 2 = {:.0} µs of signature primitives: at most {} msg/s per core, {} msg/s on {} cores.",
            g.algorithm,
            per_message,
            num(1e6 / per_message),
            num(limit),
            s.cores
        );
        if let Some(r) = relay_with(s, &g.algorithm) {
            let _ = write!(
                o,
                " Tereze with {} keys end to end: {} msg/s = **{:.0}%** of that limit.",
                g.algorithm,
                num(r.throughput),
                100.0 * r.throughput / limit
            );
        }
        let _ = writeln!(o);
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

    const STREEBOG: &str = "\
Doing md_gost12_256 for 1s on 16 size blocks: 638079 md_gost12_256's in 1.00s
version: 3.0.19
The 'numbers' are in 1000s of bytes per second processed.
type             16 bytes     64 bytes    256 bytes   1024 bytes   8192 bytes  16384 bytes
md_gost12_256    10209.29k    32414.80k    75668.48k   113524.74k   137953.28k   138227.46k
";

    #[test]
    fn reads_openssl_speed_for_a_digest() {
        let d = parse_digest_speed(STREEBOG, "md_gost12_256").expect("parses");
        assert_eq!(d.blocks.len(), 6);
        assert_eq!(d.blocks[0], (16, 10_209_290.0));
        assert_eq!(d.blocks[5], (16384, 138_227_460.0));
        assert!((d.mb_per_second() - 138.2).abs() < 0.1);
        // 4,096 bytes at the 1,024-byte block's rate; 100 bytes at the 64-byte block's.
        assert!((d.seconds(4096) - 4096.0 / 113_524_740.0).abs() < 1e-12);
        assert!((d.seconds(100) - 100.0 / 32_414_800.0).abs() < 1e-12);
        assert!((d.seconds(8) - 8.0 / 10_209_290.0).abs() < 1e-12);
        assert!(parse_digest_speed(STREEBOG, "md_gost12_512").is_err());
        assert!(parse_digest_speed("nothing", "md_gost12_256").is_err());
        assert!(
            parse_digest_speed(&STREEBOG.replace("75668.48k", "fast"), "md_gost12_256").is_err()
        );
    }

    fn gost_speed() -> GostSpeed {
        GostSpeed {
            algorithm: "GOST R 34.10-2012-256".into(),
            raw_sign: 10_000.0,
            raw_verify: 5_000.0,
            digest: parse_digest_speed(STREEBOG, "md_gost12_256").expect("parses"),
        }
    }

    fn limit_of(g: &GostSpeed, op: &str, bytes: usize) -> f64 {
        g.document_limit(op, bytes, 600)
    }

    #[test]
    fn the_gost_limit_adds_the_primitive_and_the_digests() {
        let g = gost_speed();
        // 100 µs + 65,536 B at 138.2 MB/s (474 µs) + 600 B at 75.7 MB/s (7.9 µs).
        let limit = g.document_limit("sign", 65_536, 600);
        assert!((1e6 / limit - 581.9).abs() < 0.5, "{limit}");
        let verify = g.document_limit("verify", 1024, 600);
        assert!((1e6 / verify - (200.0 + 9.0 + 7.9)).abs() < 0.5, "{verify}");
        // (100 + 200) × 2 µs per relayed message.
        assert_eq!(g.crypto_us_per_message(), 600.0);
        // A primitive measured beside a row replaces the summary's.
        assert_eq!(
            g.limit_with(10_000.0, 1024, 600),
            limit_of(&g, "sign", 1024)
        );
        assert!(g.limit_with(20_000.0, 1024, 600) > limit_of(&g, "sign", 1024));
    }

    #[test]
    fn the_report_puts_gost_next_to_its_limit() {
        let mut suite = sample();
        suite.gost = vec![GostRow {
            size: "4 KB".into(),
            bytes: 4000,
            algorithm: "GOST R 34.10-2012-256".into(),
            op: "sign".into(),
            tereze: 2000.0,
            signed_info: 600,
            primitive: 10_000.0,
            limit: Some(8000.0),
        }];
        suite.gost_speed = vec![gost_speed()];
        suite.relay.push(RelayRow {
            system: "Tereze (GOST R 34.10-2012-256)".into(),
            mode: "closed".into(),
            window: 128,
            messages: 100,
            delivered: 100,
            throughput: 1000.0,
            ..Default::default()
        });
        let md = render(&suite);
        assert!(md.contains("### 1b. GOST R 34.10-2012"), "{md}");
        assert!(
            md.contains("| GOST R 34.10-2012-256 | sign | 4 KB (4000 B) | 2,000 | 8,000 | **25%** | 8,000 |"),
            "{md}"
        );
        assert!(
            md.contains("up to 10,000 sign/s and 5,000 verify/s"),
            "{md}"
        );
        // 600 µs per message: 1,667 msg/s per core, 3,333 on 2; 1,000 msg/s is 30%.
        assert!(md.contains("= 600 µs of signature primitives: at most 1,667 msg/s per core, 3,333 msg/s on 2 cores. Tereze with GOST R 34.10-2012-256 keys end to end: 1,000 msg/s = **30%** of that limit."), "{md}");
        // The GOST relay row does not stand in for the ECDSA one in the targets.
        assert_eq!(targets(&suite)[2].measured, "2,000 msg/s");
        assert!(!render(&sample()).contains("### 1b."));
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
