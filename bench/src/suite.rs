//! The whole benchmark in one run: every ceiling and every scenario on the same machine and
//! broker build, a fresh broker per run, the real binaries as child processes with their memory
//! sampled, medians of `--runs` runs, and the table (target/bench/table.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use crate::gen::RawRecord;
use crate::kafka::{self, E2e};
use crate::load::{self, LoadArgs};
use crate::procs::{free_port, http_get, metric_sum, wait_for_port, Broker, Proc};

pub const RAW_TOPIC: &str = "zoom.webhooks.raw";
pub const SECRET: &str = "bench-secret";
/// The source topics the end-to-end consumer reads: most of the traffic, and the split one.
pub const E2E_TOPICS: &[&str] = &[
    "zoom.meeting-participants",
    "zoom.recording-completed",
    "zoom-admin.meeting-participants",
];

#[derive(Debug, Clone, clap::Args)]
pub struct SuiteArgs {
    /// The Apache Kafka install (scripts/install-kafka prints it) every scenario starts a fresh
    /// one-node broker from.
    #[arg(long, env = "ZOOMSTREAM_KAFKA_HOME")]
    pub kafka_home: PathBuf,
    /// Where the release binaries are.
    #[arg(long, default_value = "target/release")]
    pub bin_dir: PathBuf,
    /// The sources file the processors (and the Python peers) run with.
    #[arg(long, default_value = "schemas/sources.toml")]
    pub sources: PathBuf,
    /// Python of the venv with confluent-kafka, fastavro and quixstreams (scripts/bench makes
    /// it) [default: ~/.cache/zoomstream-bench/venv/bin/python].
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Results, logs and the table go here.
    #[arg(long, default_value = "target/bench")]
    pub out: PathBuf,
    /// Runs per figure (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Runs of the secondary figures (quixstreams peer, transactional pipe, 2 processors,
    /// end-to-end with the at-least-once processor), which bound the whole run's time.
    #[arg(long, default_value_t = 1)]
    pub secondary_runs: usize,
    /// Measured seconds per HTTP run.
    #[arg(long, default_value_t = 6.0)]
    pub duration: f64,
    /// Warm-up seconds per HTTP run.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Connections of the closed-loop and open-loop runs.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Raw records in the backlog every drain scenario reads.
    #[arg(long, default_value_t = 200_000)]
    pub backlog: usize,
    /// Scenarios to run (comma-separated): http, acked, ingest, open, e2e, e2e-low, pipe, processor,
    /// python, quix, long, sweep, variant [default: all but long, sweep, variant, e2e-low].
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Also run the long RSS-flatness run (ingest + processor at 50 % load).
    #[arg(long)]
    pub long: bool,
    /// Seconds of the long run.
    #[arg(long, default_value_t = 300.0)]
    pub long_secs: f64,
    /// Also run the settings sweep (batch sizes, linger, log level), one run each.
    #[arg(long)]
    pub sweep: bool,
    /// Ingest's closed-loop maximum (req/s) for the open-loop runs when `ingest` is not run.
    #[arg(long)]
    pub ingest_max: Option<f64>,
    /// The `variant` scenario: processor drains with this environment (KEY=VALUE, repeatable),
    /// e.g. ZOOMSTREAM_BATCH_MAX_RECORDS=5000 or RUST_LOG=warn.
    #[arg(long = "variant-env", value_parser = crate::parse_kv)]
    pub variant_env: Vec<(String, String)>,
    /// The `variant` scenario's delivery mode.
    #[arg(long, default_value = "at-least-once")]
    pub variant_delivery: String,
    /// The `variant` scenario's number of processor processes.
    #[arg(long, default_value_t = 1)]
    pub variant_processes: usize,
    /// librdkafka settings for every processor (`--kafka-option`), e.g. to try a fetch or
    /// batch setting.
    #[arg(long = "processor-option")]
    pub processor_options: Vec<String>,
    /// Another ingest binary for every scenario (e.g. a patched local copy).
    #[arg(long)]
    pub ingest_bin: Option<PathBuf>,
    /// Another processor binary for the `variant` scenario (e.g. a patched local copy).
    #[arg(long)]
    pub variant_bin: Option<PathBuf>,
}

struct Suite {
    args: SuiteArgs,
    logs: PathBuf,
    rt: tokio::runtime::Runtime,
    backlog: Vec<RawRecord>,
    results: BTreeMap<String, Vec<Value>>,
    sources: PathBuf,
    started: Instant,
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

impl Suite {
    fn wants(&self, name: &str) -> bool {
        if self.args.only.is_empty() {
            return !matches!(name, "long" | "sweep" | "variant" | "e2e-low")
                || (name == "long" && self.args.long)
                || (name == "sweep" && self.args.sweep);
        }
        self.args.only.iter().any(|o| o == name)
    }

    fn record(&mut self, key: &str, mut value: Value) -> anyhow::Result<()> {
        value["loadavg"] = json!(loadavg());
        value["suite_elapsed_s"] = json!(self.started.elapsed().as_secs_f64());
        println!("[bench] {key}: {value}");
        self.results.entry(key.to_owned()).or_default().push(value);
        std::fs::write(
            self.args.out.join("results.json"),
            serde_json::to_string_pretty(&self.results)?,
        )?;
        Ok(())
    }

    fn bin(&self, name: &str) -> PathBuf {
        self.args.bin_dir.join(name)
    }

    fn broker(&self, name: &str) -> anyhow::Result<Broker> {
        Broker::start(&self.logs, name)
    }

    fn load(
        &self,
        url: &str,
        rate: Option<f64>,
        duration: f64,
        seed: u64,
    ) -> anyhow::Result<load::LoadReport> {
        self.rt.block_on(load::run(LoadArgs {
            url: url.to_owned(),
            secret: SECRET.to_owned(),
            connections: self.args.connections,
            rate,
            duration,
            warmup: self.args.warmup,
            seed,
        }))
    }

    fn ingest(
        &self,
        broker: &Broker,
        name: &str,
        env: &[(&str, &str)],
        options: &[&str],
    ) -> anyhow::Result<(Proc, String)> {
        let port = free_port()?;
        let mut cmd = Command::new(
            self.args
                .ingest_bin
                .clone()
                .unwrap_or_else(|| self.bin("zoomstream-ingest")),
        );
        cmd.args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--kafka-brokers",
            &broker.addr,
        ])
        .args([
            "--zoom-secret-token",
            SECRET,
            "--zoom-admin-secret-token",
            SECRET,
        ]);
        for o in options {
            cmd.args(["--kafka-option", o]);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let proc = Proc::spawn(name, cmd, &self.logs)?;
        let addr = format!("127.0.0.1:{port}");
        wait_for_port(port, Duration::from_secs(30))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_get(&addr, "/readyz").map(|(s, _)| s).unwrap_or(0) != 200 {
            if Instant::now() > deadline {
                bail!("ingest not ready after 30 s (log: {})", proc.log.display());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok((proc, format!("http://{addr}")))
    }

    fn processor(
        &self,
        broker: &Broker,
        name: &str,
        group: &str,
        delivery: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<(Proc, String)> {
        let port = free_port()?;
        let bin = match (&self.args.variant_bin, name.contains("variant")) {
            (Some(bin), true) => bin.clone(),
            _ => self.bin("zoomstream-processor"),
        };
        let mut cmd = Command::new(bin);
        cmd.args([
            "--kafka-brokers",
            &broker.addr,
            "--metrics-listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--group-id", group, "--delivery", delivery])
        .arg("--sources")
        .arg(&self.sources)
        .args(["--kafka-option", "session.timeout.ms=6000"]);
        for o in &self.args.processor_options {
            cmd.args(["--kafka-option", o]);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let proc = Proc::spawn(name, cmd, &self.logs)?;
        Ok((proc, format!("127.0.0.1:{port}")))
    }

    /// A fresh broker with the raw topic holding the backlog; records the fill as a broker-ceiling
    /// sample.
    fn filled_broker(&mut self, name: &str) -> anyhow::Result<(Broker, u64)> {
        let broker = self.broker(&format!("kafka-{name}"))?;
        self.rt
            .block_on(kafka::create_topic(&broker.addr, RAW_TOPIC, 12))?;
        let fill = kafka::produce(&broker.addr, RAW_TOPIC, &self.backlog, &[])?;
        if fill.failed > 0 {
            bail!(
                "{} records of the backlog were not acknowledged",
                fill.failed
            );
        }
        let records = fill.records;
        self.record("broker_ceiling", serde_json::to_value(&fill)?)?;
        Ok((broker, records))
    }

    // ------------------------------------------------------------------ scenarios

    fn http_ceiling(&mut self) -> anyhow::Result<()> {
        for run in 0..self.args.runs {
            let port = free_port()?;
            let mut cmd = Command::new(std::env::current_exe()?);
            cmd.args(["http-noop", "--listen", &format!("127.0.0.1:{port}")]);
            let server = Proc::spawn("http-noop", cmd, &self.logs)?;
            wait_for_port(port, Duration::from_secs(10))?;
            let load_avg = loadavg();
            let report = self.load(
                &format!("http://127.0.0.1:{port}"),
                None,
                self.args.duration,
                100 + run as u64,
            )?;
            let rss = server.stop(Duration::from_secs(2));
            let mut v = serde_json::to_value(&report)?;
            v["rss_peak_mb"] = json!(rss.peak_mb);
            v["cpu_s"] = json!(rss.cpu_s);
            v["loadavg_before"] = json!(load_avg);
            self.record("http_ceiling", v)?;
        }
        Ok(())
    }

    /// C2a: the acknowledged-producer ceiling, a child process on a fresh broker.
    fn acked_ceiling(&mut self) -> anyhow::Result<()> {
        for _ in 0..self.args.runs {
            let broker = self.broker("kafka-acked")?;
            let load_avg = loadavg();
            let mut cmd = Command::new(std::env::current_exe()?);
            cmd.args(["produce-acked", "--brokers", &broker.addr])
                .args(["--connections", &self.args.connections.to_string()])
                .args(["--warmup", &self.args.warmup.to_string()])
                .args(["--duration", &self.args.duration.to_string()]);
            let proc = Proc::spawn("produce-acked", cmd, &self.logs)?;
            let log = proc.log.clone();
            let (status, rss) = proc.wait(Duration::from_secs(120))?;
            let broker_rss = broker.stop();
            let mut v = json_report("produce-acked", &log, status)?;
            v["rss_peak_mb"] = json!(rss.peak_mb);
            v["cpu_s"] = json!(rss.cpu_s);
            v["broker_cpu_s"] = json!(broker_rss.cpu_s);
            v["loadavg_before"] = json!(load_avg);
            self.record("acked_ceiling", v)?;
        }
        Ok(())
    }

    fn ingest_closed(
        &mut self,
        key: &str,
        env: &[(&str, &str)],
        options: &[&str],
        runs: usize,
    ) -> anyhow::Result<()> {
        for run in 0..runs {
            let broker = self.broker("kafka-ingest")?;
            let load_avg = loadavg();
            let (ingest, url) = self.ingest(&broker, "ingest", env, options)?;
            let report = self.load(&url, None, self.args.duration, 200 + run as u64)?;
            let rss = ingest.stop(Duration::from_secs(10));
            let broker_rss = broker.stop();
            let mut v = serde_json::to_value(&report)?;
            v["rss_peak_mb"] = json!(rss.peak_mb);
            v["broker_rss_peak_mb"] = json!(broker_rss.peak_mb);
            v["cpu_s"] = json!(rss.cpu_s);
            v["broker_cpu_s"] = json!(broker_rss.cpu_s);
            v["loadavg_before"] = json!(load_avg);
            v["env"] = json!(format!("{env:?} {options:?}"));
            self.record(key, v)?;
        }
        Ok(())
    }

    fn ingest_max(&self) -> anyhow::Result<f64> {
        if let Some(max) = self.args.ingest_max {
            return Ok(max);
        }
        let mut v: Vec<f64> = self
            .results
            .get("ingest_closed")
            .context("run the ingest scenario first, or pass --ingest-max")?
            .iter()
            .filter_map(|r| r["throughput_rps"].as_f64())
            .collect();
        Ok(median(&mut v))
    }

    /// Ingest open-loop at `rate`; with `delivery`, a processor behind it and the end-to-end
    /// consumer reading the busiest source topics (participants, recording files).
    fn open_loop(
        &mut self,
        key: &str,
        delivery: Option<&str>,
        rate: f64,
        duration: f64,
        env: &[(&str, &str)],
        run: usize,
    ) -> anyhow::Result<()> {
        let broker = self.broker("kafka-open")?;
        let load_avg = loadavg();
        let (ingest, url) = self.ingest(&broker, &format!("ingest-{key}"), &[], &[])?;
        let group = format!("bench-{key}-{run}");
        let mut processor = None;
        let mut e2e = None;
        let from_ms = Arc::new(AtomicU64::new(u64::MAX));
        if let Some(delivery) = delivery {
            let (proc, metrics) =
                self.processor(&broker, &format!("processor-{key}"), &group, delivery, env)?;
            // The metrics endpoint is bound once the source topics exist.
            let deadline = Instant::now() + Duration::from_secs(60);
            while http_get(&metrics, "/metrics").is_err() {
                if Instant::now() > deadline {
                    bail!(
                        "processor metrics endpoint not up (log: {})",
                        proc.log.display()
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let mut schemas = kafka::source_schemas(&self.sources)?;
            schemas.retain(|topic, _| E2E_TOPICS.contains(&topic.as_str()));
            e2e = Some(E2e::start(
                &broker.addr,
                schemas,
                &format!("{group}-e2e"),
                from_ms.clone(),
            )?);
            processor = Some((proc, metrics));
            // Both groups join before the measured load starts.
            std::thread::sleep(Duration::from_secs(5));
        }
        from_ms.store(
            (kafka::now_ms() + (self.args.warmup * 1000.0) as i64 + 50) as u64,
            Ordering::Relaxed,
        );
        let report = self.load(&url, Some(rate), duration, 300 + run as u64)?;
        let mut v = serde_json::to_value(&report)?;
        if let Some(e2e) = e2e {
            std::thread::sleep(Duration::from_millis(1500));
            v["e2e"] = serde_json::to_value(&e2e.finish()?)?;
        }
        let ingest_rss = ingest.stop(Duration::from_secs(10));
        v["ingest_rss_peak_mb"] = json!(ingest_rss.peak_mb);
        v["ingest_cpu_s"] = json!(ingest_rss.cpu_s);
        let flat = |r: &crate::procs::RssReport| {
            r.flatness()
                .map(|(a, b)| json!({"early_mb": a, "late_mb": b, "ratio": b / a}))
        };
        if duration > 60.0 {
            v["ingest_rss_flatness"] = json!(flat(&ingest_rss));
            v["ingest_rss_series"] =
                json!(ingest_rss.series.iter().step_by(20).collect::<Vec<_>>());
        }
        if let Some((proc, metrics)) = processor {
            let text = http_get(&metrics, "/metrics")
                .map(|(_, t)| t)
                .unwrap_or_default();
            let processor_rss = proc.stop(Duration::from_secs(15));
            v["delivery"] = json!(delivery);
            v["processor_in"] = json!(metric_sum(&text, "zoomstream_processor_records_in_total"));
            v["processor_out"] = json!(metric_sum(&text, "zoomstream_processor_records_out_total"));
            v["processor_dlq"] = json!(metric_sum(&text, "zoomstream_processor_dlq_records_total"));
            v["processor_rss_peak_mb"] = json!(processor_rss.peak_mb);
            v["processor_cpu_s"] = json!(processor_rss.cpu_s);
            if duration > 60.0 {
                v["processor_rss_flatness"] = json!(flat(&processor_rss));
                v["processor_rss_series"] =
                    json!(processor_rss.series.iter().step_by(20).collect::<Vec<_>>());
            }
        }
        let broker_rss = broker.stop();
        v["broker_rss_peak_mb"] = json!(broker_rss.peak_mb);
        v["broker_cpu_s"] = json!(broker_rss.cpu_s);
        v["loadavg_before"] = json!(load_avg);
        v["env"] = json!(format!("{env:?}"));
        self.record(key, v)
    }

    /// The real processor binary(ies) draining the backlog; rates from the first record on,
    /// read from their /metrics every 50 ms.
    fn drain_processor(
        &mut self,
        key: &str,
        processes: usize,
        delivery: &str,
        env: &[(&str, &str)],
        run: usize,
    ) -> anyhow::Result<()> {
        let (broker, expect) = self.filled_broker(key)?;
        let load_avg = loadavg();
        let group = format!("bench-{key}-{run}");
        let mut procs = Vec::new();
        for i in 0..processes {
            procs.push(self.processor(
                &broker,
                &format!("processor-{key}-{i}"),
                &group,
                delivery,
                env,
            )?);
        }
        let launched = Instant::now();
        let scrape = |procs: &[(Proc, String)]| -> (f64, f64, f64) {
            let mut sums = (0.0, 0.0, 0.0);
            for (_, addr) in procs {
                if let Ok((_, text)) = http_get(addr, "/metrics") {
                    sums.0 += metric_sum(&text, "zoomstream_processor_records_in_total");
                    sums.1 += metric_sum(&text, "zoomstream_processor_records_out_total");
                    sums.2 += metric_sum(&text, "zoomstream_processor_dlq_records_total");
                }
            }
            sums
        };
        let mut first: Option<(Instant, f64, f64)> = None;
        let deadline = launched + Duration::from_secs(900);
        let mut commits;
        let (end, last) = loop {
            let now = Instant::now();
            let sums = scrape(&procs);
            commits = (0.0, 0.0);
            for (_, addr) in &procs {
                if let Ok((_, text)) = http_get(addr, "/metrics") {
                    commits.0 +=
                        metric_sum(&text, "zoomstream_processor_commit_duration_seconds_sum");
                    commits.1 +=
                        metric_sum(&text, "zoomstream_processor_commit_duration_seconds_count");
                }
            }
            if first.is_none() && sums.0 > 0.0 {
                first = Some((now, sums.0, sums.1));
            }
            if sums.0 >= expect as f64 {
                break (now, sums);
            }
            if now > deadline {
                bail!("{key}: {} of {expect} records in 900 s", sums.0);
            }
            for (p, _) in procs.iter_mut() {
                if !p.alive() {
                    bail!("{key}: {} exited (log: {})", p.name, p.log.display());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let (t0, in0, out0) = first.expect("records were counted");
        let seconds = end.duration_since(t0).as_secs_f64().max(1e-3);
        let mut rss = Vec::new();
        let mut cpu = 0.0;
        for (p, _) in procs {
            let report = p.stop(Duration::from_secs(15));
            rss.push(report.peak_mb);
            cpu += report.cpu_s.unwrap_or(0.0);
        }
        let broker_rss = broker.stop();
        let v = json!({
            "name": key, "processes": processes, "delivery": delivery, "env": format!("{env:?}"),
            "records_in": last.0, "records_out": last.1, "dlq": last.2, "expected": expect,
            "seconds": seconds,
            "in_per_s": (last.0 - in0) / seconds, "out_per_s": (last.1 - out0) / seconds,
            "startup_s": t0.duration_since(launched).as_secs_f64(),
            "rss_peak_mb": rss, "broker_rss_peak_mb": broker_rss.peak_mb, "loadavg_before": load_avg,
            "cpu_s": cpu, "cpu_us_per_record": cpu / last.0 * 1e6, "broker_cpu_s": broker_rss.cpu_s,
            "commits": commits.1, "commit_ms_mean": if commits.1 > 0.0 { commits.0 / commits.1 * 1000.0 } else { 0.0 },
            "commit_s_total": commits.0,
        });
        self.record(key, v)
    }

    /// A drainer that reports itself (the pipe ceiling, the Python peers): a child process whose
    /// last stdout line is its JSON report.
    fn drain_child(
        &mut self,
        key: &str,
        mut cmd_for: impl FnMut(&str, &str, u64) -> Command,
        run: usize,
    ) -> anyhow::Result<()> {
        let (broker, expect) = self.filled_broker(key)?;
        if key.starts_with("python") {
            // The processor creates its source topics at start; the peers get them made for
            // them (6 partitions, as the processor does), outside the timed drain.
            for topic in kafka::source_schemas(&self.sources)?.keys() {
                self.rt
                    .block_on(kafka::create_topic(&broker.addr, topic, 6))?;
            }
        }
        let load_avg = loadavg();
        let group = format!("bench-{key}-{run}");
        let proc = Proc::spawn(key, cmd_for(&broker.addr, &group, expect), &self.logs)?;
        let log = proc.log.clone();
        let (status, rss) = proc.wait(Duration::from_secs(900))?;
        let broker_rss = broker.stop();
        let mut v = json_report(key, &log, status)?;
        v["rss_peak_mb"] = json!(rss.peak_mb);
        v["broker_rss_peak_mb"] = json!(broker_rss.peak_mb);
        v["cpu_s"] = json!(rss.cpu_s);
        v["broker_cpu_s"] = json!(broker_rss.cpu_s);
        v["expected"] = json!(expect);
        v["loadavg_before"] = json!(load_avg);
        self.record(key, v)
    }

    fn pipe_cmd(&self, transactional: Option<usize>) -> impl FnMut(&str, &str, u64) -> Command {
        let exe = std::env::current_exe().expect("own path");
        move |brokers: &str, group: &str, expect: u64| {
            let mut cmd = Command::new(&exe);
            cmd.args([
                "pipe",
                "--brokers",
                brokers,
                "--group",
                group,
                "--expect",
                &expect.to_string(),
            ]);
            if let Some(b) = transactional {
                cmd.args(["--transactional", &b.to_string()]);
            }
            cmd
        }
    }

    fn python_cmd(&self, script: &'static str) -> impl FnMut(&str, &str, u64) -> Command {
        let python = self.args.python.clone().unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/zoomstream-bench/venv/bin/python")
        });
        let sources = self.sources.clone();
        let script = PathBuf::from("bench/python").join(script);
        move |brokers: &str, group: &str, expect: u64| {
            let mut cmd = Command::new(&python);
            cmd.arg(&script)
                .args([
                    "--brokers",
                    brokers,
                    "--group",
                    group,
                    "--topic",
                    RAW_TOPIC,
                    "--expect",
                    &expect.to_string(),
                ])
                .arg("--sources")
                .arg(&sources);
            cmd
        }
    }
}

/// A scenario that fails is reported and skipped; the rest of the run goes on.
fn soft(result: anyhow::Result<()>) {
    if let Err(err) = result {
        eprintln!("[bench] scenario failed: {err:#}");
        println!("[bench] scenario failed: {err:#}");
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

pub fn run(args: SuiteArgs) -> anyhow::Result<()> {
    // The test kit's broker starter reads the install from the environment.
    std::env::set_var("ZOOMSTREAM_KAFKA_HOME", &args.kafka_home);
    std::fs::create_dir_all(&args.out)?;
    let logs = args.out.join("logs");
    let sources = std::fs::canonicalize(&args.sources)
        .with_context(|| format!("{}", args.sources.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let needs_backlog = ["pipe", "processor", "python", "quix", "sweep", "variant"];
    let mut suite = Suite {
        args,
        logs,
        rt,
        backlog: Vec::new(),
        results: BTreeMap::new(),
        sources,
        started: Instant::now(),
    };
    if needs_backlog.iter().any(|s| suite.wants(s)) {
        let started = Instant::now();
        suite.backlog = crate::gen::backlog(suite.args.backlog, 42, SECRET);
        println!(
            "[bench] generated a backlog of {} raw records in {:.1} s",
            suite.backlog.len(),
            started.elapsed().as_secs_f64()
        );
    }
    let runs = suite.args.runs;
    let started = Instant::now();
    let mut meta = json!({
        "started_loadavg": loadavg(),
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "runs": runs, "duration_s": suite.args.duration, "connections": suite.args.connections,
        "backlog": suite.args.backlog,
    });

    if suite.wants("http") {
        soft(suite.http_ceiling());
    }
    if suite.wants("acked") {
        soft(suite.acked_ceiling());
    }
    if suite.wants("ingest") {
        soft(suite.ingest_closed("ingest_closed", &[], &[], runs));
    }
    if suite.wants("open") {
        let rate = (suite.ingest_max()? * 0.5).round();
        let duration = suite.args.duration;
        for run in 0..runs {
            soft(suite.open_loop("open", None, rate, duration, &[], run));
        }
    }
    if suite.wants("e2e") {
        let rate = (suite.ingest_max()? * 0.5).round();
        let duration = suite.args.duration;
        for run in 0..runs {
            soft(suite.open_loop("e2e_eos", Some("exactly-once"), rate, duration, &[], run));
        }
        for run in 0..suite.args.secondary_runs {
            soft(suite.open_loop("e2e_alo", Some("at-least-once"), rate, duration, &[], run));
        }
    }
    if suite.wants("e2e-low") {
        // The pipeline's own latency, without the 2 cores saturated: 10 % of ingest's max.
        let rate = (suite.ingest_max()? * 0.1).round();
        let duration = suite.args.duration;
        for run in 0..suite.args.secondary_runs {
            soft(suite.open_loop(
                "e2e_low_eos",
                Some("exactly-once"),
                rate,
                duration,
                &[],
                run,
            ));
            soft(suite.open_loop(
                "e2e_low_alo",
                Some("at-least-once"),
                rate,
                duration,
                &[],
                run,
            ));
        }
    }
    if suite.wants("pipe") {
        for run in 0..runs {
            let cmd = suite.pipe_cmd(None);
            soft(suite.drain_child("pipe", cmd, run));
        }
        for run in 0..suite.args.secondary_runs {
            let cmd = suite.pipe_cmd(Some(10_000));
            soft(suite.drain_child("pipe_eos", cmd, run));
        }
    }
    if suite.wants("processor") {
        for run in 0..runs {
            soft(suite.drain_processor("processor_alo", 1, "at-least-once", &[], run));
        }
        for run in 0..runs {
            soft(suite.drain_processor("processor_eos", 1, "exactly-once", &[], run));
        }
        for run in 0..suite.args.secondary_runs {
            soft(suite.drain_processor("processor_alo_x2", 2, "at-least-once", &[], run));
        }
        for run in 0..suite.args.secondary_runs {
            soft(suite.drain_processor("processor_eos_x2", 2, "exactly-once", &[], run));
        }
    }
    if suite.wants("python") {
        for run in 0..runs {
            let cmd = suite.python_cmd("peer_confluent.py");
            soft(suite.drain_child("python_confluent", cmd, run));
        }
    }
    if suite.wants("quix") {
        for run in 0..suite.args.secondary_runs {
            let cmd = suite.python_cmd("peer_quix.py");
            soft(suite.drain_child("python_quix", cmd, run));
        }
    }
    if suite.wants("variant") {
        let env: Vec<(String, String)> = suite.args.variant_env.clone();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (delivery, n) = (
            suite.args.variant_delivery.clone(),
            suite.args.variant_processes,
        );
        for run in 0..runs {
            soft(suite.drain_processor("variant", n, &delivery, &env, run));
        }
    }
    if suite.wants("sweep") {
        soft(sweep(&mut suite));
    }
    if suite.wants("long") {
        let rate = (suite.ingest_max()? * 0.5).round();
        let secs = suite.args.long_secs;
        soft(suite.open_loop("long", Some("exactly-once"), rate, secs, &[], 0));
    }
    meta["finished_loadavg"] = json!(loadavg());
    meta["wall_s"] = json!(started.elapsed().as_secs_f64());
    suite.results.insert("meta".into(), vec![meta]);
    std::fs::write(
        suite.args.out.join("results.json"),
        serde_json::to_string_pretty(&suite.results)?,
    )?;
    let table = crate::table::render(&suite.results);
    std::fs::write(suite.args.out.join("table.md"), &table)?;
    println!("\n{table}");
    println!(
        "[bench] results: {}/results.json, table: {}/table.md",
        suite.args.out.display(),
        suite.args.out.display()
    );
    Ok(())
}

/// Settings a deployment can change without code: processor batch size and age per delivery
/// mode, ingest's linger and log level. One run each (noisy: see BENCHMARKS.md).
fn sweep(suite: &mut Suite) -> anyhow::Result<()> {
    for (records, ms) in [("1000", "100"), ("5000", "500"), ("20000", "1000")] {
        let env = [
            ("ZOOMSTREAM_BATCH_MAX_RECORDS", records),
            ("ZOOMSTREAM_BATCH_MAX_MS", ms),
        ];
        suite.drain_processor(
            &format!("sweep_eos_{records}_{ms}"),
            1,
            "exactly-once",
            &env,
            0,
        )?;
        suite.drain_processor(
            &format!("sweep_alo_{records}_{ms}"),
            1,
            "at-least-once",
            &env,
            0,
        )?;
    }
    soft(suite.ingest_closed("sweep_ingest_log_warn", &[("RUST_LOG", "warn")], &[], 1));
    soft(suite.ingest_closed("sweep_ingest_linger0", &[], &["linger.ms=0"], 1));
    soft(suite.ingest_closed("sweep_ingest_linger5", &[], &["linger.ms=5"], 1));
    Ok(())
}

/// The JSON report a child printed last in its log, or why there is none.
fn json_report(key: &str, log: &Path, status: ExitStatus) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(log)?;
    if !status.success() {
        bail!(
            "{key} failed ({status}); log {}:\n{}",
            log.display(),
            tail(&text, 20)
        );
    }
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("no JSON report")?;
    Ok(serde_json::from_str(line)?)
}

/// Re-renders the table from a results file.
pub fn table_from(path: &Path) -> anyhow::Result<String> {
    let results: BTreeMap<String, Vec<Value>> =
        serde_json::from_str(&std::fs::read_to_string(path)?)?;
    Ok(crate::table::render(&results))
}
