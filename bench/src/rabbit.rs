//! RabbitMQ, the broker users would pick instead: Debian's `rabbitmq-server` started as a
//! private loopback-only instance (own node name, data, log and config in a temporary
//! directory, its own epmd on a free port bound to 127.0.0.1), and a `lapin` client with the
//! node bench's shape: a durable queue, persistent messages, publisher confirms with a window
//! of unconfirmed messages, manual consumer acks.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use tokio_stream::StreamExt;

use crate::sys;

const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
const CTL: &str = "/usr/lib/rabbitmq/bin/rabbitmqctl";

/// A running private RabbitMQ instance; stopped on drop.
pub struct Rabbit {
    server: Option<Child>,
    epmd: Option<Child>,
    env: Vec<(String, String)>,
    pub node: String,
    pub port: u16,
    pid_file: PathBuf,
    dir: tempfile::TempDir,
}

impl Rabbit {
    pub fn installed() -> bool {
        std::path::Path::new(SERVER).exists()
    }

    pub fn start(limit: Duration) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("tereze-bench-rabbitmq-")
            .tempdir()
            .context("temporary directory for RabbitMQ")?;
        let d = dir.path();
        sys::remove_on_abort(d);
        let port = sys::free_port()?;
        let dist = sys::free_port()?;
        let epmd_port = sys::free_port()?;
        let node = format!("tereze-bench-{}@localhost", std::process::id());
        std::fs::write(
            d.join("rabbitmq.conf"),
            "log.console = false\nlog.file.level = warning\n",
        )?;
        std::fs::write(d.join("enabled_plugins"), "[].\n")?;
        std::fs::write(d.join("rabbitmq-env.conf"), "")?;
        let path = |p: &str| d.join(p).display().to_string();
        let env: Vec<(String, String)> = [
            ("HOME", path("")),
            ("RABBITMQ_NODENAME", node.clone()),
            ("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1".into()),
            ("RABBITMQ_NODE_PORT", port.to_string()),
            ("RABBITMQ_DIST_PORT", dist.to_string()),
            ("RABBITMQ_MNESIA_BASE", path("mnesia")),
            ("RABBITMQ_LOG_BASE", path("log")),
            ("RABBITMQ_CONFIG_FILE", path("rabbitmq.conf")),
            ("RABBITMQ_CONF_ENV_FILE", path("rabbitmq-env.conf")),
            ("RABBITMQ_ADVANCED_CONFIG_FILE", path("advanced.config")),
            ("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins")),
            ("RABBITMQ_PID_FILE", path("rabbitmq.pid")),
            (
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}".into(),
            ),
            ("ERL_EPMD_ADDRESS", "127.0.0.1".into()),
            ("ERL_EPMD_PORT", epmd_port.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let epmd = sys::spawn_group(
            Command::new("epmd")
                .args(["-address", "127.0.0.1", "-port", &epmd_port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )?;
        let log = std::fs::File::create(d.join("server.out"))?;
        let server = sys::spawn_group(
            Command::new(SERVER)
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log),
        )?;
        let mut rabbit = Self {
            server: Some(server),
            epmd: Some(epmd),
            env,
            node,
            port,
            pid_file: d.join("rabbitmq.pid"),
            dir,
        };
        // `await_startup` needs the node registered with epmd: retry until it is, or the
        // server exits, or `limit` passes.
        let started = Instant::now();
        let mut last = String::new();
        let mut up = false;
        while started.elapsed() < limit {
            if let Some(server) = rabbit.server.as_mut() {
                if let Ok(Some(status)) = server.try_wait() {
                    last = format!("rabbitmq-server exited ({status})");
                    break;
                }
            }
            match sys::run_ok(
                &mut rabbit.ctl(&["await_startup", "--timeout", "20"]),
                Duration::from_secs(30),
            ) {
                Ok(_) => {
                    up = true;
                    break;
                }
                Err(e) => last = format!("{e:#}"),
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        if !up {
            let out =
                std::fs::read_to_string(rabbit.dir.path().join("server.out")).unwrap_or_default();
            let tail: Vec<&str> = out.lines().rev().take(10).collect();
            bail!(
                "RabbitMQ did not start within {} s: {last}\n{}",
                limit.as_secs(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        Ok(rabbit)
    }

    fn ctl(&self, args: &[&str]) -> Command {
        let mut c = Command::new(CTL);
        c.envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(["-n", &self.node])
            .args(args);
        c
    }

    pub fn version(&self) -> Option<String> {
        let out = sys::run_ok(&mut self.ctl(&["version"]), Duration::from_secs(30)).ok()?;
        Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// The broker's OS process (beam.smp), from its pid file.
    pub fn beam_pid(&self) -> Option<u32> {
        std::fs::read_to_string(&self.pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub fn uri(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Stops the broker (`rabbitmqctl stop`, then its process group) and its epmd.
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = sys::run_limited(&mut self.ctl(&["stop"]), Duration::from_secs(30));
            sys::stop_group(&mut server, Duration::from_secs(10));
        }
        if let Some(mut epmd) = self.epmd.take() {
            sys::stop_group(&mut epmd, Duration::from_secs(2));
        }
    }
}

impl Drop for Rabbit {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One client run against the broker.
#[derive(Debug, Clone)]
pub struct Case {
    pub messages: usize,
    /// Unconfirmed messages in flight (closed loop); ignored when `rate` > 0.
    pub window: usize,
    /// Messages per second (open loop), 0 for a closed loop.
    pub rate: u64,
    pub body: Vec<u8>,
}

/// What the client saw.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub delivered: usize,
    pub seconds: f64,
    /// Publish → confirm (the broker has the message durably, or it was consumed).
    pub confirm: Vec<Duration>,
    /// Publish → delivered to the consumer.
    pub deliver: Vec<Duration>,
    pub nacked: usize,
}

/// Publishes `case.messages` persistent messages to a fresh durable queue with publisher
/// confirms and consumes them with manual acks (prefetch 256), each side on its own
/// connection; latency from a monotonic timestamp carried in the body.
pub async fn run(uri: &str, queue: &str, case: &Case, limit: Duration) -> Result<Outcome> {
    if case.body.len() < 16 {
        bail!("the message body must have room for its 16-byte header");
    }
    let publisher = Connection::connect(uri, ConnectionProperties::default())
        .await
        .context("AMQP connect (publisher)")?;
    let consumer_conn = Connection::connect(uri, ConnectionProperties::default())
        .await
        .context("AMQP connect (consumer)")?;
    let pch = publisher.create_channel().await?;
    pch.queue_declare(
        queue.into(),
        QueueDeclareOptions::durable(),
        FieldTable::default(),
    )
    .await?;
    pch.confirm_select(ConfirmSelectOptions::default()).await?;
    let cch = consumer_conn.create_channel().await?;
    cch.basic_qos(256, BasicQosOptions::default()).await?;
    let mut consumer = cch
        .basic_consume(
            queue.into(),
            "tereze-bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let start = Instant::now();
    let n = case.messages;
    let receiver = tokio::spawn(async move {
        let mut lat = Vec::with_capacity(n);
        while lat.len() < n {
            let Some(d) = consumer.next().await else {
                break;
            };
            let d = d?;
            let now = start.elapsed();
            let sent = d
                .data
                .get(8..16)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_le_bytes)
                .unwrap_or(0);
            lat.push(now.saturating_sub(Duration::from_nanos(sent)));
            d.ack(BasicAckOptions::default()).await?;
        }
        Ok::<_, lapin::Error>(lat)
    });

    let confirms: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let nacked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let window = if case.rate > 0 {
        100_000
    } else {
        case.window.max(1)
    };
    let sem = Arc::new(tokio::sync::Semaphore::new(window));
    let interval = (case.rate > 0).then(|| Duration::from_secs_f64(1.0 / case.rate as f64));
    let mut pending = tokio::task::JoinSet::new();
    let mut body = case.body.clone();
    let props = BasicProperties::default().with_delivery_mode(2);
    for i in 0..n {
        if let Some(iv) = interval {
            tokio::time::sleep_until((start + iv * i as u32).into()).await;
        }
        let permit = sem.clone().acquire_owned().await?;
        let t0 = start.elapsed();
        body[0..8].copy_from_slice(&(i as u64).to_le_bytes());
        body[8..16].copy_from_slice(&(t0.as_nanos() as u64).to_le_bytes());
        let confirm = pch
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                &body,
                props.clone(),
            )
            .await?;
        let confirms = confirms.clone();
        let nacked = nacked.clone();
        pending.spawn(async move {
            let c = confirm.await;
            drop(permit);
            let elapsed = start.elapsed().saturating_sub(t0);
            match c {
                Ok(c) if c.is_ack() => {
                    if let Ok(mut v) = confirms.lock() {
                        v.push(elapsed);
                    }
                }
                _ => {
                    nacked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
        while pending.try_join_next().is_some() {}
    }
    while pending.join_next().await.is_some() {}
    let deliver = match tokio::time::timeout(limit, receiver).await {
        Ok(Ok(Ok(lat))) => lat,
        Ok(Ok(Err(e))) => bail!("consumer: {e}"),
        Ok(Err(e)) => bail!("consumer task: {e}"),
        Err(_) => bail!(
            "the consumer did not get every message within {} s",
            limit.as_secs()
        ),
    };
    let seconds = start.elapsed().as_secs_f64();
    let _ = pch
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await;
    let _ = publisher.close(200, "done".into()).await;
    let _ = consumer_conn.close(200, "done".into()).await;
    let confirm = confirms.lock().map(|v| v.clone()).unwrap_or_default();
    Ok(Outcome {
        delivered: deliver.len(),
        seconds,
        confirm,
        deliver,
        nacked: nacked.load(std::sync::atomic::Ordering::Relaxed),
    })
}
