//! The real binaries as child processes: built by `cargo build --workspace --bins`, SIGKILLed
//! when dropped.

use std::io::Read as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::broker::{brokers, free_port};
use crate::names::unique;
use crate::probes::{get_text, metric, wait_ingest_ready};
use crate::sources::TestSources;

/// The path of a binary of this workspace, built by `cargo build --workspace --bins`
/// (scripts/test does that before running the tests).
pub fn binary(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop(); // the test binary
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` (scripts/test does)",
        path.display()
    );
    path
}

/// A real `zoomstream-processor` process; SIGKILLed when dropped.
pub struct ProcessorProcess {
    pub child: Child,
    pub metrics_port: u16,
    pub log: PathBuf,
}

impl ProcessorProcess {
    /// Starts the binary with the config's environment, as an operator would, with `name` as
    /// its stable identity (`ZOOMSTREAM_INSTANCE_ID`: static group member, transactional id
    /// `<group>-<name>`), kept across restarts as compose keeps a replica's.
    pub fn spawn(config: &zoomstream_processors::Config, name: &str) -> ProcessorProcess {
        ProcessorProcess::start(config, name, true)
    }

    /// Starts the binary without a stable identity: a dynamic group member whose transactional
    /// id is new with every process.
    pub fn spawn_dynamic(config: &zoomstream_processors::Config, name: &str) -> ProcessorProcess {
        ProcessorProcess::start(config, name, false)
    }

    fn start(
        config: &zoomstream_processors::Config,
        name: &str,
        stable_identity: bool,
    ) -> ProcessorProcess {
        let metrics_port = free_port();
        let log =
            std::env::temp_dir().join(unique(&format!("{}-{name}", config.group_id)) + ".log");
        let options: Vec<String> = config
            .kafka
            .options
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let delivery = match config.delivery {
            zoomstream_processors::Delivery::ExactlyOnce => "exactly-once",
            zoomstream_processors::Delivery::AtLeastOnce => "at-least-once",
        };
        let mut command = Command::new(binary("zoomstream-processor"));
        command.env_clear();
        if stable_identity {
            command.env("ZOOMSTREAM_INSTANCE_ID", name);
        }
        if !options.is_empty() {
            command.env("ZOOMSTREAM_KAFKA_OPTIONS", options.join(","));
        }
        let child = command
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("ZOOMSTREAM_KAFKA_BROKERS", &config.kafka.brokers)
            .env("ZOOMSTREAM_RAW_TOPIC", &config.raw_topic)
            .env("ZOOMSTREAM_GROUP_ID", &config.group_id)
            .env("ZOOMSTREAM_SOURCES", &config.sources)
            .env("ZOOMSTREAM_DLQ_TOPIC", &config.dlq_topic)
            .env(
                "ZOOMSTREAM_REPLICATION_FACTOR",
                config.topic_creation.replication_factor.to_string(),
            )
            .env("ZOOMSTREAM_DELIVERY", delivery)
            .env(
                "ZOOMSTREAM_BATCH_MAX_RECORDS",
                config.batch_max_records.to_string(),
            )
            .env("ZOOMSTREAM_BATCH_MAX_MS", config.batch_max_ms.to_string())
            .env(
                "ZOOMSTREAM_MAX_BODY_BYTES",
                config.max_body_bytes.to_string(),
            )
            .env(
                "ZOOMSTREAM_METRICS_LISTEN",
                format!("127.0.0.1:{metrics_port}"),
            )
            .env("RUST_LOG", "info,zoomstream_processors=debug")
            .stdout(std::fs::File::create(&log).expect("log file"))
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting zoomstream-processor");
        ProcessorProcess {
            child,
            metrics_port,
            log,
        }
    }

    /// The process's metrics page, once it serves one.
    pub fn metrics(&self) -> Option<String> {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(("127.0.0.1", self.metrics_port)).ok()?;
        // A stopped (SIGSTOP) process accepts the connection in the kernel but never answers.
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .ok()?;
        let mut page = String::new();
        stream.read_to_string(&mut page).ok()?;
        Some(page)
    }

    /// What the process is doing, for a test that failed around it: its lag and batch metrics
    /// and every thread's stack (gdb, where installed). Printed, not asserted.
    pub fn report(&self, name: &str) -> String {
        let metrics: String = self
            .metrics()
            .unwrap_or_else(|| "(no answer on /metrics)".into())
            .lines()
            .filter(|l| {
                l.starts_with("zoomstream_processor_consumer_lag")
                    || l.starts_with("zoomstream_processor_batches")
                    || l.starts_with("zoomstream_processor_records_in")
            })
            .collect::<Vec<_>>()
            .join("\n");
        let stacks = std::process::Command::new("gdb")
            .args(["-batch", "-ex", "thread apply all bt 12", "-p"])
            .arg(self.child.id().to_string())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_else(|e| format!("(no gdb: {e})"));
        format!(
            "--- processor {name} (pid {}), log {}\n{metrics}\n{stacks}",
            self.child.id(),
            self.log.display()
        )
    }

    /// Raw records this process has consumed so far.
    pub fn records_in(&self) -> f64 {
        self.metric("zoomstream_processor_records_in_total")
    }

    /// A counter or gauge from the process's metrics page (0 when absent or not serving).
    pub fn metric(&self, name_with_labels: &str) -> f64 {
        self.metrics().map_or(0.0, |p| metric(&p, name_with_labels))
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends `signal` (`STOP`, `CONT`, `TERM` …) without waiting.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// The exit status, once the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("waiting for the processor")
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("processor exits")
    }
}

impl Drop for ProcessorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A real `zoomstream-ingest` process, its JSON log captured to a file; SIGKILLed when dropped.
pub struct IngestProcess {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl IngestProcess {
    /// Starts the binary with `env` (on top of a listen address of its own).
    pub fn spawn(env: &[(&str, String)]) -> IngestProcess {
        IngestProcess::start(env, None)
    }

    /// Starts the binary as [`spawn`](Self::spawn) does, with its file-descriptor limit (soft
    /// and hard) at `nofile`, set by util-linux's `prlimit`, which then runs it in its place.
    pub fn spawn_with_fd_limit(env: &[(&str, String)], nofile: u64) -> IngestProcess {
        IngestProcess::start(env, Some(nofile))
    }

    fn start(env: &[(&str, String)], nofile: Option<u64>) -> IngestProcess {
        let port = free_port();
        let log = std::env::temp_dir().join(unique("ingest") + ".log");
        let mut command = match nofile {
            None => Command::new(binary("zoomstream-ingest")),
            Some(limit) => {
                let mut prlimit = Command::new("prlimit");
                prlimit
                    .arg(format!("--nofile={limit}:{limit}"))
                    .arg("--")
                    .arg(binary("zoomstream-ingest"));
                prlimit
            }
        };
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "debug")
            .env("ZOOMSTREAM_LISTEN", format!("127.0.0.1:{port}"));
        for (k, v) in env {
            command.env(k, v);
        }
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = command
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("starting zoomstream-ingest");
        let process = IngestProcess { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "zoomstream-ingest did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        process
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// Waits until /readyz says the broker is reachable and the raw topic exists.
    pub async fn wait_ready(&self, client: &reqwest::Client) {
        wait_ingest_ready(client, &self.url("/readyz")).await;
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Peak resident memory so far, in KiB (VmHWM).
    pub fn peak_rss_kib(&self) -> u64 {
        peak_rss_kib(self.child.id())
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("ingest exits")
    }
}

impl Drop for IngestProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Peak resident memory of a process, in KiB (VmHWM of /proc/PID/status).
pub fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Runs a command to its end, killing it and failing after `timeout`.
pub fn run_to_end(command: &mut Command, timeout: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning");
    let deadline = Instant::now() + timeout;
    while child.try_wait().expect("waiting").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "{command:?} did not finish within {timeout:?}; stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut output = Output {
        status: child.wait().unwrap(),
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut output.stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut output.stderr)
        .unwrap();
    output
}

/// The service binary, as an operator runs it.
pub struct SseProcess {
    pub child: Child,
    pub port: u16,
}

impl SseProcess {
    /// Starts the binary on `port` with the sources file and one bearer token for every
    /// stream, its log appended to `log`.
    pub fn spawn(sources: &TestSources, token: &str, port: u16, log: &Path) -> SseProcess {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let child = Command::new(binary("zoomstream-sse"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("ZOOMSTREAM_SSE_LISTEN", format!("127.0.0.1:{port}"))
            .env("ZOOMSTREAM_SOURCES", &sources.path)
            .env("ZOOMSTREAM_KAFKA_BROKERS", brokers())
            .env("ZOOMSTREAM_SSE_TOKEN", token)
            .env("ZOOMSTREAM_SSE_KEEP_ALIVE_MS", "300")
            .env("RUST_LOG", "info,zoomstream_sse=debug")
            .stdout(out)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting zoomstream-sse");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "zoomstream-sse did not listen on {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        SseProcess { child, port }
    }

    /// The stream URL of a source.
    pub fn url(&self, source: &str) -> String {
        format!("http://127.0.0.1:{}/sources/{source}/events", self.port)
    }

    /// The service's metrics page.
    pub async fn metrics(&self) -> String {
        get_text(
            &reqwest::Client::new(),
            &format!("http://127.0.0.1:{}/metrics", self.port),
        )
        .await
    }

    /// SIGTERM; the exit status once it stopped.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "zoomstream-sse did not stop within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SseProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
