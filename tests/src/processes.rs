//! The real binaries as child processes: built by `cargo build --workspace --bins`, SIGKILLed
//! when dropped.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::broker::free_port;
use crate::names::unique;
use crate::probes::{metric, wait_ingest_ready};

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
