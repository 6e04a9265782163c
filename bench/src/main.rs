//! `tereze-bench`: the side-by-side benchmark suite (issue 13). One run on one machine:
//! XMLDSig and exclusive C14N in process against python-xmlsec and lxml, per document against
//! the `xmlsec1` command, the two-node durable relay (`tereze bench`) against a RabbitMQ
//! durable queue, resident memory, and `openssl speed` as the physical reference; GOST
//! R 34.10-2012 signatures and the relay with GOST keys next to their crypto limit. Installs
//! what it lacks (apt, pip), starts and stops its own servers on loopback only, and ends
//! within its deadline. `scripts/bench` builds it and runs it; BENCHMARKS.md describes it.

mod gost_suite;
mod rabbit;
mod sys;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use tereze_bench::docs::{self, TestDocument};
use tereze_bench::gost::GostAlgorithm;
use tereze_bench::measure::{self, percentile_ms, Algorithm, KeyMaterial};
use tereze_bench::report::{
    self, C14nRow, CliDefaultRow, DsigRow, MemoryRow, PyResults, RelayRow, Suite,
};

/// The allocator the node and the `tereze` command ship with (decision 0006), so the
/// in-process figures are those of the code users run.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PYTHON_SCRIPT: &str = include_str!("xmlsec_bench.py");
/// The document the node bench sends; the RabbitMQ messages have the same size.
const NODE_DOCUMENT: &[u8] =
    include_bytes!("../../codecs/samples/eaeu.export-declaration/valid-grain.xml");

/// Run the side-by-side benchmark suite and print the table.
///
/// Measures, in one run: XMLDSig sign/verify of 1, 4 and 64 KB documents (ECDSA P-256,
/// RSA-2048) against python-xmlsec and the xmlsec1 command, GOST R 34.10-2012 (256, 512)
/// against its crypto limit; exclusive C14N against lxml; the
/// two-node durable relay against a RabbitMQ durable queue (publisher confirms, persistent
/// messages, consumer acks), and with GOST keys; resident memory; openssl speed. Installs
/// what is missing (apt,
/// pip; needs root), uses loopback only, stops its servers at the end, even on failure.
#[derive(Debug, Parser)]
#[command(name = "tereze-bench", version)]
struct Args {
    /// Seconds per timed run of an in-process measurement.
    #[arg(long, default_value_t = 0.5)]
    seconds: f64,
    /// Timed runs per in-process measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Processes per command-line measurement (xmlsec1, tereze xml).
    #[arg(long, default_value_t = 40)]
    cli_runs: usize,
    /// Messages per closed-loop relay case (both systems).
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// Messages in flight in the closed-loop case (both systems).
    #[arg(long, default_value_t = 128)]
    window: usize,
    /// Rate of the open-loop relay case, messages per second (both systems).
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Messages of the open-loop case.
    #[arg(long, default_value_t = 10_000)]
    rate_messages: usize,
    /// Seconds per run of `openssl speed` and algorithm.
    #[arg(long, default_value_t = 2)]
    speed_seconds: u32,
    /// The whole suite stops after this many seconds; stopping its servers then takes up to
    /// about 20 s more (570 keeps the whole run within 10 minutes).
    #[arg(long, default_value_t = 570)]
    deadline: u64,
    /// The tereze binary (default: next to this one).
    #[arg(long)]
    tereze: Option<PathBuf>,
    /// Do not install anything; parts whose tools are missing are reported as not measured.
    #[arg(long)]
    no_install: bool,
    /// Also write the report (Markdown) to this file.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Also write every figure as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Leave out GOST R 34.10-2012 (its XMLDSig rows, crypto limit and the relay with GOST
    /// keys), e.g. on a machine without the OpenSSL GOST engine.
    #[arg(long)]
    no_gost: bool,
}

fn main() {
    let args = Args::parse();
    let code = match run(&args) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("tereze-bench: {e:#}");
            2
        }
    };
    sys::stop_all_groups();
    std::process::exit(code);
}

fn step(what: &str) {
    eprintln!("tereze-bench: {what}");
}

fn run(args: &Args) -> Result<bool> {
    let began = Instant::now();
    let load_at_start = sys::load_average();
    let machine_at_start = sys::machine_ticks();
    let own_at_start = sys::own_ticks();
    if let Some(l) = load_at_start.filter(|l| *l > 0.5) {
        eprintln!(
            "tereze-bench: warning: the 1-minute load average is {l:.2}; other work on this machine will show in the figures (the report says how much ran beside the suite)"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    // A signal or the deadline stops every server this run started, then the run.
    runtime.spawn(async {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        eprintln!("tereze-bench: interrupted; stopping the servers it started");
        sys::stop_all_groups();
        std::process::exit(130);
    });
    let deadline = Duration::from_secs(args.deadline);
    std::thread::spawn(move || {
        std::thread::sleep(deadline);
        eprintln!(
            "tereze-bench: deadline of {} s reached; stopping the servers it started",
            deadline.as_secs()
        );
        sys::stop_all_groups();
        std::process::exit(124);
    });

    let mut suite = Suite {
        date: today(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ..Suite::default()
    };
    let tereze = match &args.tereze {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .ok_or_else(|| anyhow!("no directory of the current executable"))?
            .join("tereze"),
    };
    if !tereze.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p tereze` or pass --tereze",
            tereze.display()
        );
    }

    step("checking tools (xmlsec1, rabbitmq-server, openssl and its GOST engine, python-xmlsec, lxml)");
    ensure_tools(args.no_install, !args.no_gost, &mut suite.missing);
    suite.machine = machine();
    suite.versions = versions();

    step("openssl speed");
    match openssl_speed(args.speed_seconds) {
        Ok(s) => suite.speed = Some(s),
        Err(e) => suite.missing.push(format!("openssl speed: {e:#}")),
    }

    let work = tempfile::Builder::new().prefix("tereze-bench-").tempdir()?;
    sys::remove_on_abort(work.path());
    let documents = docs::all();
    let keys: Vec<KeyMaterial> = Algorithm::ALL
        .iter()
        .map(|a| KeyMaterial::generate(*a))
        .collect::<Result<_, _>>()?;
    let files = Files::write(work.path(), &documents, &keys)?;

    step("XMLDSig and C14N in process (Tereze)");
    for (di, d) in documents.iter().enumerate() {
        for (ki, k) in keys.iter().enumerate() {
            let (sign, verify) = measure::dsig_rates(&d.bytes, k, args.seconds, args.runs)?;
            for (op, rate) in [("sign", sign), ("verify", verify)] {
                suite.dsig.push(DsigRow {
                    size: d.label.into(),
                    bytes: d.bytes.len(),
                    algorithm: k.algorithm.label().into(),
                    op: op.into(),
                    tereze: rate,
                    ..DsigRow::default()
                });
            }
            let signed = std::fs::read(&files.tereze_signed[di][ki])?;
            suite.checks.push((
                format!(
                    "Tereze refuses a tampered document, {} {}",
                    k.algorithm.slug(),
                    d.label
                ),
                measure::tamper_detected(&signed, &k.trust_key),
            ));
        }
        let (c, cp) = measure::c14n_rates(&d.bytes, args.seconds, args.runs)?;
        suite.c14n.push(C14nRow {
            size: d.label.into(),
            bytes: d.bytes.len(),
            tereze: c,
            tereze_with_parse: cp,
            ..C14nRow::default()
        });
    }

    if !args.no_gost {
        step("GOST R 34.10-2012: crypto limit and XMLDSig in process (Tereze)");
        let settings = gost_suite::Settings {
            seconds: args.seconds,
            runs: args.runs,
            speed_seconds: args.speed_seconds,
            work: work.path(),
        };
        gost_suite::run(&settings, &documents, &mut suite);
    }

    step("XMLDSig and C14N in process (python-xmlsec, lxml)");
    match python(args, work.path(), &files, &documents, &keys) {
        Ok(py) => merge_python(&mut suite, &py, &documents, &keys, &files),
        Err(e) => suite.missing.push(format!("python-xmlsec and lxml: {e:#}")),
    }

    step("one process per document (xmlsec1, tereze xml)");
    if let Err(e) = cli(args, &tereze, &files, &documents, &keys, &mut suite) {
        suite.missing.push(format!("command-line runs: {e:#}"));
    }

    step("durable relay: Tereze, two nodes (tereze bench)");
    let mut memory_nodes = Vec::new();
    // The GOST closed loop runs right after the ECDSA one, so both see the same machine.
    let mut cases = vec![("closed", args.messages, 0, None)];
    if !args.no_gost {
        cases.push(("closed", args.messages, 0, Some(GOST_RELAY)));
    }
    cases.push(("open", args.rate_messages, args.rate, None));
    for (mode, messages, rate, keys) in cases {
        let case = RelayCase {
            mode,
            messages,
            window: args.window,
            rate,
            keys,
        };
        match node_bench(&tereze, work.path(), &case, &mut suite.checks) {
            Ok((row, mem)) => {
                suite.relay.push(row);
                if mode == "closed" && keys.is_none() {
                    memory_nodes = mem;
                }
            }
            Err(e) => suite.missing.push(format!(
                "Tereze relay, {mode} loop{}: {e:#}",
                keys.map_or(String::new(), |k| format!(
                    " with {} keys",
                    k.algorithm.label()
                ))
            )),
        }
    }

    step("durable relay: RabbitMQ durable queue (own loopback instance)");
    let rabbit_memory = match rabbitmq(args, &runtime, &mut suite) {
        Ok(m) => Some(m),
        Err(e) => {
            suite.missing.push(format!("RabbitMQ: {e:#}"));
            None
        }
    };
    suite.memory = memory_nodes;
    suite.memory.extend(rabbit_memory);

    suite.seconds = began.elapsed().as_secs_f64();
    // How much else ran: the machine's busy CPU less this run's own (its children included,
    // all reaped by now), and the hypervisor's steal.
    if let (Some((b0, s0)), Some((b1, s1)), Some(o0), Some(o1)) = (
        machine_at_start,
        sys::machine_ticks(),
        own_at_start,
        sys::own_ticks(),
    ) {
        let available = suite.seconds * 100.0 * suite.cores as f64;
        let other = (b1.saturating_sub(b0) as f64 - o1.saturating_sub(o0) as f64).max(0.0);
        suite.other_load = Some(report::OtherLoad {
            load_at_start: load_at_start.unwrap_or(f64::NAN),
            other_share: other / available,
            steal_share: s1.saturating_sub(s0) as f64 / available,
        });
    }
    let text = report::render(&suite);
    println!("{text}");
    if let Some(p) = &args.out {
        std::fs::write(p, &text).with_context(|| p.display().to_string())?;
    }
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_string_pretty(&suite)?)
            .with_context(|| p.display().to_string())?;
    }
    Ok(suite.missing.is_empty() && suite.checks.iter().all(|c| c.1))
}

fn today() -> String {
    Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Installs what is missing: Debian packages (after `apt-get update`) and python packages.
fn ensure_tools(no_install: bool, gost: bool, missing: &mut Vec<String>) {
    let mut apt: Vec<&str> = Vec::new();
    if gost && !gost_suite::engine_installed() {
        apt.push(gost_suite::ENGINE_PACKAGE);
    }
    if !sys::have("xmlsec1") {
        apt.push("xmlsec1");
    }
    let rabbit_was_there = rabbit::Rabbit::installed();
    if !rabbit_was_there {
        apt.push("rabbitmq-server");
    }
    if !sys::have("openssl") {
        apt.push("openssl");
    }
    if !sys::have("python3") {
        apt.extend(["python3", "python3-pip"]);
    }
    if !apt.is_empty() {
        if no_install {
            missing.push(format!("not installed (--no-install): {}", apt.join(" ")));
        } else {
            step(&format!("installing {} (apt)", apt.join(" ")));
            let installed = sys::run_ok(
                Command::new("apt-get").args(["update", "-qq"]),
                Duration::from_secs(180),
            )
            .and_then(|_| {
                sys::run_ok(
                    Command::new("apt-get")
                        .env("DEBIAN_FRONTEND", "noninteractive")
                        .args(["install", "-y", "-qq"])
                        .args(&apt),
                    Duration::from_secs(300),
                )
            });
            if let Err(e) = installed {
                missing.push(format!("apt-get install {}: {e:#}", apt.join(" ")));
            }
            if !rabbit_was_there && rabbit::Rabbit::installed() {
                // The package may have started the distribution's own broker: this suite
                // runs a private instance and leaves no server behind.
                let _ = sys::run_limited(
                    Command::new("invoke-rc.d").args(["rabbitmq-server", "stop"]),
                    Duration::from_secs(60),
                );
            }
        }
    }
    let python_ok = || {
        Command::new("python3")
            .args(["-c", "import xmlsec, lxml"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if sys::have("python3") && !python_ok() {
        if no_install {
            missing.push("python-xmlsec or lxml not installed (--no-install)".into());
        } else {
            step("installing python xmlsec and lxml (pip)");
            let pip = |extra: &[&str]| {
                sys::run_ok(
                    Command::new("python3")
                        .args(["-m", "pip", "install", "--quiet"])
                        .args(extra)
                        .args(["xmlsec", "lxml"]),
                    Duration::from_secs(300),
                )
            };
            if pip(&[]).is_err() {
                if let Err(e) = pip(&["--break-system-packages"]) {
                    missing.push(format!("pip install xmlsec lxml: {e:#}"));
                }
            }
        }
    }
}

fn first_line(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(|l| l.trim().to_owned())
}

/// `nproc`, the CPU model from /proc/cpuinfo, memory (as `free -g` counts it), OS, kernel.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU".to_owned(), |(_, m)| m.trim().to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|k| k.parse::<f64>().ok())
        .map_or("?".to_owned(), |k| format!("{:.0}", k / 1024.0 / 1024.0));
    let debian = std::fs::read_to_string("/etc/debian_version").unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let fs = first_line(Command::new("stat").args(["-f", "-c", "%T", "/tmp"]))
        .unwrap_or_else(|| "?".into());
    format!(
        "{cores} vCPU \"{model}\", {gib} GiB RAM, Debian {}, Linux {}, node and broker data in /tmp ({fs})",
        debian.trim(),
        kernel.trim()
    )
}

fn versions() -> Vec<(String, String)> {
    let mut v = vec![("tereze".to_owned(), env!("CARGO_PKG_VERSION").to_owned())];
    if let Some(o) = first_line(Command::new("openssl").arg("version")) {
        v.push((
            "openssl".into(),
            o.trim_start_matches("OpenSSL ").to_owned(),
        ));
    }
    if let Some(x) = first_line(Command::new("xmlsec1").arg("--version")) {
        v.push((
            "xmlsec1 CLI".into(),
            x.trim_start_matches("xmlsec1 ").to_owned(),
        ));
    }
    for pkg in ["rabbitmq-server", "erlang-base"] {
        if let Some(x) = first_line(Command::new("dpkg-query").args(["-W", "-f=${Version}", pkg])) {
            if !x.is_empty() && !x.contains("no packages") {
                v.push((pkg.into(), x));
            }
        }
    }
    v
}

fn openssl_speed(seconds: u32) -> Result<report::Speed> {
    let out = sys::run_ok(
        Command::new("openssl").args([
            "speed",
            "-seconds",
            &seconds.to_string(),
            "ecdsap256",
            "rsa2048",
        ]),
        Duration::from_secs(30 + 6 * seconds as u64),
    )?;
    Ok(report::parse_openssl_speed(&String::from_utf8_lossy(
        &out.stdout,
    ))?)
}

/// The files the other tools read and write, by document index then key index.
struct Files {
    docs: Vec<PathBuf>,
    private: Vec<PathBuf>,
    public: Vec<PathBuf>,
    cert: Vec<PathBuf>,
    /// Signed by Tereze without KeyInfo (for python-xmlsec and xmlsec1 to verify).
    tereze_signed: Vec<Vec<PathBuf>>,
    /// Signed by Tereze with the certificate (for `tereze xml verify`).
    tereze_signed_cert: Vec<Vec<PathBuf>>,
    /// Written by the python script.
    template: Vec<Vec<PathBuf>>,
    python_signed: Vec<Vec<PathBuf>>,
}

impl Files {
    fn write(dir: &Path, documents: &[TestDocument], keys: &[KeyMaterial]) -> Result<Self> {
        let mut f = Files {
            docs: vec![],
            private: vec![],
            public: vec![],
            cert: vec![],
            tereze_signed: vec![],
            tereze_signed_cert: vec![],
            template: vec![],
            python_signed: vec![],
        };
        for k in keys {
            let s = k.algorithm.slug();
            let (p, q, c) = (
                dir.join(format!("{s}-key.pem")),
                dir.join(format!("{s}-pub.pem")),
                dir.join(format!("{s}-cert.pem")),
            );
            std::fs::write(&p, &k.private_pem)?;
            std::fs::write(&q, &k.public_pem)?;
            std::fs::write(&c, &k.certificate_pem)?;
            f.private.push(p);
            f.public.push(q);
            f.cert.push(c);
        }
        for (i, d) in documents.iter().enumerate() {
            let path = dir.join(format!("doc-{i}.xml"));
            std::fs::write(&path, &d.bytes)?;
            f.docs.push(path);
            let (mut ts, mut tc, mut tp, mut ps) = (vec![], vec![], vec![], vec![]);
            for k in keys {
                let s = k.algorithm.slug();
                let bare = dir.join(format!("doc-{i}-{s}-tereze.xml"));
                std::fs::write(&bare, measure::sign_full(&d.bytes, &k.bare)?)?;
                let cert = dir.join(format!("doc-{i}-{s}-tereze-cert.xml"));
                std::fs::write(&cert, measure::sign_full(&d.bytes, &k.with_certificate)?)?;
                ts.push(bare);
                tc.push(cert);
                tp.push(dir.join(format!("doc-{i}-{s}-template.xml")));
                ps.push(dir.join(format!("doc-{i}-{s}-python.xml")));
            }
            f.tereze_signed.push(ts);
            f.tereze_signed_cert.push(tc);
            f.template.push(tp);
            f.python_signed.push(ps);
        }
        Ok(f)
    }
}

fn python(
    args: &Args,
    dir: &Path,
    files: &Files,
    documents: &[TestDocument],
    keys: &[KeyMaterial],
) -> Result<PyResults> {
    let script = dir.join("xmlsec_bench.py");
    std::fs::write(&script, PYTHON_SCRIPT)?;
    let by_key = |paths: &Vec<PathBuf>| -> serde_json::Value {
        keys.iter()
            .zip(paths)
            .map(|(k, p)| (k.algorithm.slug().to_owned(), serde_json::json!(p)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let config = serde_json::json!({
        "seconds": args.seconds,
        "runs": args.runs,
        "keys": keys.iter().enumerate().map(|(i, k)| serde_json::json!({
            "slug": k.algorithm.slug(),
            "private": files.private[i],
            "public": files.public[i],
        })).collect::<Vec<_>>(),
        "documents": documents.iter().enumerate().map(|(i, d)| serde_json::json!({
            "label": d.label,
            "path": files.docs[i],
            "template": by_key(&files.template[i]),
            "python_signed": by_key(&files.python_signed[i]),
            "tereze_signed": by_key(&files.tereze_signed[i]),
        })).collect::<Vec<_>>(),
    });
    let cfg = dir.join("python.json");
    std::fs::write(&cfg, config.to_string())?;
    // 4 timed measurements per document and key, 2 per document for C14N, plus set-up.
    let budget = args.seconds * args.runs as f64 * (documents.len() * (4 * keys.len() + 2)) as f64;
    let out = sys::run_ok(
        Command::new("python3").arg(&script).arg(&cfg),
        Duration::from_secs_f64(budget * 2.0 + 60.0),
    )?;
    Ok(PyResults::parse(&String::from_utf8_lossy(&out.stdout))?)
}

fn merge_python(
    suite: &mut Suite,
    py: &PyResults,
    documents: &[TestDocument],
    keys: &[KeyMaterial],
    files: &Files,
) {
    for (k, v) in &py.versions {
        suite.versions.push((k.clone(), v.clone()));
    }
    for row in &mut suite.dsig {
        let Some(k) = keys.iter().find(|k| k.algorithm.label() == row.algorithm) else {
            continue;
        };
        let Some(p) = py.dsig.get(&format!("{}/{}", k.algorithm.slug(), row.size)) else {
            continue;
        };
        let (full, core) = if row.op == "sign" {
            (p.sign_full, p.sign_core)
        } else {
            (p.verify_full, p.verify_core)
        };
        row.python_full = Some(full);
        row.python_core = Some(core);
    }
    for row in &mut suite.c14n {
        if let Some(p) = py.c14n.get(&row.size) {
            row.lxml = Some(p.c14n);
            row.lxml_with_parse = Some(p.parse_c14n);
        }
    }
    for (what, ok) in &py.checks {
        suite.checks.push((what.clone(), *ok));
    }
    // And the other way round: Tereze verifies what python-xmlsec signed.
    for (di, d) in documents.iter().enumerate() {
        for (ki, k) in keys.iter().enumerate() {
            let ok = std::fs::read(&files.python_signed[di][ki])
                .ok()
                .is_some_and(|b| measure::verify_full(&b, &k.trust_key).is_ok());
            suite.checks.push((
                format!(
                    "Tereze verifies python-xmlsec's signature, {}/{}",
                    k.algorithm.slug(),
                    d.label
                ),
                ok,
            ));
        }
    }
}

/// Processes per second of `make()`, run `runs` times in sequence; every run must exit 0.
fn per_process(runs: usize, mut make: impl FnMut() -> Command) -> Result<f64> {
    let started = Instant::now();
    for _ in 0..runs.max(1) {
        let mut c = make();
        let out = c
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output()
            .with_context(|| format!("{:?}", c.get_program()))?;
        if !out.status.success() {
            bail!(
                "{:?} failed ({}): {}",
                c.get_program(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .next()
                    .unwrap_or("")
            );
        }
    }
    Ok(runs.max(1) as f64 / started.elapsed().as_secs_f64())
}

fn xmlsec1(op: &str, key_flag: &str, key: &Path, input: &Path, no_ca: bool) -> Command {
    let mut c = Command::new("xmlsec1");
    c.arg(format!("--{op}")).arg(key_flag).arg(key);
    if op == "sign" {
        c.args(["--output", "/dev/null"]);
    }
    c.arg(input);
    if no_ca {
        // xmlsec1 parses the system CA bundle at every start (about 15 ms), even for a bare
        // key: without it the figure is the per-document work.
        c.env("SSL_CERT_FILE", "/dev/null")
            .env("SSL_CERT_DIR", "/nonexistent");
    }
    c
}

fn cli(
    args: &Args,
    tereze: &Path,
    files: &Files,
    documents: &[TestDocument],
    keys: &[KeyMaterial],
    suite: &mut Suite,
) -> Result<()> {
    let have_xmlsec1 = sys::have("xmlsec1");
    for (di, d) in documents.iter().enumerate() {
        for (ki, k) in keys.iter().enumerate() {
            let template = &files.template[di][ki];
            let py_signed = &files.python_signed[di][ki];
            let (x_sign, x_verify) = if have_xmlsec1 && template.exists() {
                let s = per_process(args.cli_runs, || {
                    xmlsec1("sign", "--privkey-pem", &files.private[ki], template, true)
                })?;
                let v = per_process(args.cli_runs, || {
                    xmlsec1("verify", "--pubkey-pem", &files.public[ki], py_signed, true)
                })?;
                let ours = &files.tereze_signed[di][ki];
                let cross = per_process(1, || {
                    xmlsec1("verify", "--pubkey-pem", &files.public[ki], ours, true)
                })
                .is_ok();
                suite.checks.push((
                    format!(
                        "xmlsec1 verifies Tereze's signature, {}/{}",
                        k.algorithm.slug(),
                        d.label
                    ),
                    cross,
                ));
                if d.label == "4 KB" {
                    for (op, flag, key, input) in [
                        ("sign", "--privkey-pem", &files.private[ki], template),
                        ("verify", "--pubkey-pem", &files.public[ki], py_signed),
                    ] {
                        let r = per_process(args.cli_runs.div_ceil(2), || {
                            xmlsec1(op, flag, key, input, false)
                        })?;
                        suite.cli_default.push(CliDefaultRow {
                            size: d.label.into(),
                            algorithm: k.algorithm.label().into(),
                            op: op.into(),
                            xmlsec1_cli: r,
                        });
                    }
                }
                (Some(s), Some(v))
            } else {
                (None, None)
            };
            let t_sign = per_process(args.cli_runs, || {
                let mut c = Command::new(tereze);
                c.args(["xml", "sign", "--key"])
                    .arg(&files.private[ki])
                    .arg("--cert")
                    .arg(&files.cert[ki])
                    .arg(&files.docs[di]);
                c
            })?;
            let t_verify = per_process(args.cli_runs, || {
                let mut c = Command::new(tereze);
                c.args(["xml", "verify", "--trusted"])
                    .arg(&files.cert[ki])
                    .arg(&files.tereze_signed_cert[di][ki]);
                c
            })?;
            for row in suite
                .dsig
                .iter_mut()
                .filter(|r| r.size == d.label && r.algorithm == k.algorithm.label())
            {
                if row.op == "sign" {
                    row.xmlsec1_cli = x_sign;
                    row.tereze_cli = Some(t_sign);
                } else {
                    row.xmlsec1_cli = x_verify;
                    row.tereze_cli = Some(t_verify);
                }
            }
        }
    }
    if !have_xmlsec1 {
        bail!("xmlsec1 is not installed");
    }
    Ok(())
}

fn field(v: &serde_json::Value, path: &[&str]) -> f64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_f64().unwrap_or(f64::NAN)
}

/// Keys of the relay's GOST case: `tereze bench --algorithm` (the dev PKI's `pki init-dev
/// --algorithm`) for both nodes.
#[derive(Debug, Clone, Copy)]
struct RelayKeys {
    algorithm: GostAlgorithm,
    /// The `--algorithm` value of `tereze bench`.
    flag: &'static str,
}

const GOST_RELAY: RelayKeys = RelayKeys {
    algorithm: GostAlgorithm::Gost2012_256,
    flag: "KZ=gost2012-256,RU=gost2012-256",
};

/// The `SignatureMethod` of the ECDSA P-256 relay (the nodes' default keys).
const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";

/// One relay case of `tereze bench`.
struct RelayCase {
    mode: &'static str,
    messages: usize,
    window: usize,
    rate: u64,
    /// GOST keys for both nodes; `None`: the default ECDSA P-256.
    keys: Option<RelayKeys>,
}

/// One `tereze bench` run (two node processes, KZ → RU); the row and the nodes' memory. Adds
/// the check that the message read back from RU's inbox was signed (envelope and receipt)
/// with the case's algorithm and recognised.
fn node_bench(
    tereze: &Path,
    dir: &Path,
    case: &RelayCase,
    checks: &mut Vec<(String, bool)>,
) -> Result<(RelayRow, Vec<MemoryRow>)> {
    let (mode, messages, window, rate) = (case.mode, case.messages, case.window, case.rate);
    let tag = case
        .keys
        .map_or(String::new(), |k| format!("-{}", k.algorithm.slug()));
    let json = dir.join(format!("node-bench-{mode}{tag}.json"));
    let base = sys::free_range(40)?;
    let mut c = Command::new(tereze);
    c.args(["bench", "--messages", &messages.to_string()])
        .args(["--concurrency", &window.to_string()])
        .args(["--rate", &rate.to_string()])
        .args(["--base-port", &base.to_string()])
        .args(["--timeout", "120"])
        .arg("--json")
        .arg(&json);
    if let Some(k) = case.keys {
        c.args(["--algorithm", k.flag]);
    }
    let out = sys::run_ok(&mut c, Duration::from_secs(240))?;
    eprint!("{}", String::from_utf8_lossy(&out.stdout));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json)?)?;
    let (system, expected) = match case.keys {
        Some(k) => (
            format!("Tereze ({})", k.algorithm.label()),
            k.algorithm.signature_method(),
        ),
        None => ("Tereze".to_owned(), ECDSA_SHA256),
    };
    let methods = &v["signature_methods"];
    let signed_as_expected = methods["envelope"].as_str() == Some(expected)
        && methods["receipt"].as_str() == Some(expected)
        && methods["verdict"].as_str() == Some("recognised");
    if !signed_as_expected {
        eprintln!("tereze-bench: {system} {mode} loop: expected envelope and receipt signed with {expected} and recognised, read back {methods}");
    }
    checks.push((
        format!("{system}, {mode} loop: the envelope and the receipt read back from RU are signed with {expected}, and recognised"),
        signed_as_expected,
    ));
    let row = RelayRow {
        system,
        mode: mode.into(),
        window,
        rate,
        messages,
        delivered: v["delivered"].as_u64().unwrap_or(0) as usize,
        bytes: v["bytes"].as_u64().unwrap_or(0) as usize,
        throughput: field(&v, &["throughput"]),
        ack_p50_ms: field(&v, &["ack_ms", "p50"]),
        ack_p99_ms: field(&v, &["ack_ms", "p99"]),
        e2e_p50_ms: field(&v, &["e2e_ms", "p50"]),
        e2e_p99_ms: field(&v, &["e2e_ms", "p99"]),
        server_cpu_us: Some(field(&v, &["node_cpu_us_per_message"])),
    };
    let mut memory = Vec::new();
    for n in v["nodes"].as_array().into_iter().flatten() {
        let state = n["state"].as_str().unwrap_or("?");
        let role = if state == "KZ" { "sender" } else { "receiver" };
        memory.push(MemoryRow {
            process: format!("Tereze node {state} ({role})"),
            idle_mb: n["rss_idle_kib"].as_f64().map(|k| k / 1024.0),
            load_mb: n["rss_peak_kib"].as_f64().map(|k| k / 1024.0),
        });
    }
    Ok((row, memory))
}

/// The RabbitMQ cases on a private instance, and the broker's memory.
fn rabbitmq(
    args: &Args,
    runtime: &tokio::runtime::Runtime,
    suite: &mut Suite,
) -> Result<MemoryRow> {
    if !rabbit::Rabbit::installed() {
        bail!("rabbitmq-server is not installed");
    }
    let mut server = rabbit::Rabbit::start(Duration::from_secs(90))?;
    if let Some(v) = server.version() {
        suite.versions.push(("RabbitMQ (running)".into(), v));
    }
    let beam = server
        .beam_pid()
        .ok_or_else(|| anyhow!("RabbitMQ wrote no pid file"))?;
    std::thread::sleep(Duration::from_millis(500));
    let idle = sys::rss_mb(beam);
    let mut peak: f64 = 0.0;
    for (mode, messages, rate) in [
        ("closed", args.messages, 0),
        ("open", args.rate_messages, args.rate),
    ] {
        let case = rabbit::Case {
            messages,
            window: args.window,
            rate,
            body: NODE_DOCUMENT.to_vec(),
        };
        let cpu0 = sys::cpu_seconds(beam);
        let uri = server.uri();
        let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let sampler = {
            let sampling = sampling.clone();
            std::thread::spawn(move || {
                let mut m: f64 = 0.0;
                while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                    m = m.max(sys::rss_mb(beam).unwrap_or(0.0));
                    std::thread::sleep(Duration::from_millis(100));
                }
                m
            })
        };
        let outcome = runtime.block_on(rabbit::run(
            &uri,
            &format!("tereze-bench-{mode}"),
            &case,
            Duration::from_secs(120),
        ));
        sampling.store(false, std::sync::atomic::Ordering::Relaxed);
        peak = peak.max(sampler.join().unwrap_or(0.0));
        let mut o = outcome?;
        let cpu = sys::cpu_seconds(beam).zip(cpu0).map(|(a, b)| a - b);
        o.confirm.sort();
        o.deliver.sort();
        if o.nacked > 0 {
            suite.checks.push((
                format!("RabbitMQ confirmed every message ({mode} loop)"),
                false,
            ));
        }
        eprintln!(
            "RabbitMQ {mode} loop: {}/{} delivered in {:.2} s ({:.0} msg/s)",
            o.delivered,
            messages,
            o.seconds,
            o.delivered as f64 / o.seconds
        );
        suite.relay.push(RelayRow {
            system: "RabbitMQ".into(),
            mode: mode.into(),
            window: args.window,
            rate,
            messages,
            delivered: o.delivered,
            bytes: case.body.len(),
            throughput: o.delivered as f64 / o.seconds,
            ack_p50_ms: percentile_ms(&o.confirm, 50.0),
            ack_p99_ms: percentile_ms(&o.confirm, 99.0),
            e2e_p50_ms: percentile_ms(&o.deliver, 50.0),
            e2e_p99_ms: percentile_ms(&o.deliver, 99.0),
            server_cpu_us: cpu.map(|c| c * 1e6 / messages as f64),
        });
    }
    server.stop();
    Ok(MemoryRow {
        process: "RabbitMQ broker (beam.smp)".into(),
        idle_mb: idle,
        load_mb: Some(peak),
    })
}
