//! The whole benchmark in one run: every ceiling and every scenario on the same machine and
//! broker build, a fresh broker per run, the real binaries as child processes with their memory
//! sampled, medians of `--runs` runs, and the table (target/bench/table.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use crate::gen::RawRecord;
use crate::kafka;
use crate::load::{self, LoadArgs};
use crate::procs::{free_port, http_get, wait_for_port, Broker, Proc, RssReport, SharedBroker};

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
    /// Python of the venv with confluent-kafka and fastavro, for the confluent-kafka peer
    /// (scripts/bench passes scripts/install-python's).
    #[arg(long, default_value = "python3")]
    pub python: PathBuf,
    /// Python of the venv with quixstreams, for the quixstreams peer (scripts/bench passes
    /// `scripts/install-python bench/python/requirements-quix.txt`).
    #[arg(long, default_value = "python3")]
    pub quix_python: PathBuf,
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
    /// 100 000 keeps `scripts/bench` within its 15 minutes; each drain still lasts seconds.
    #[arg(long, default_value_t = 100_000)]
    pub backlog: usize,
    /// Scenarios to run (comma-separated): http, acked, ingest, open, e2e, e2e-low, pipe, processor,
    /// python, quix, long, sweep, variant, benthos (benthos-ingest, benthos-processor)
    /// [default: all but long, sweep, variant].
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

pub(crate) struct Suite {
    pub(crate) args: SuiteArgs,
    pub(crate) logs: PathBuf,
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) backlog: Vec<RawRecord>,
    pub(crate) results: BTreeMap<String, Vec<Value>>,
    pub(crate) sources: PathBuf,
    pub(crate) started: Instant,
    /// The broker of the current scenario group (see [`SharedBroker`]).
    pub(crate) shared: Option<SharedBroker>,
    /// The raw topic the current drain reads: a fresh one per drain.
    pub(crate) raw_topic: String,
    /// What each new broker takes before its group's runs (see [`Suite::warm_up`]).
    warm_up_records: Vec<RawRecord>,
    drains: usize,
}

pub(crate) fn loadavg() -> String {
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
    pub(crate) fn wants(&self, name: &str) -> bool {
        if self.args.only.is_empty() {
            return !matches!(name, "long" | "sweep" | "variant")
                || (name == "long" && self.args.long)
                || (name == "sweep" && self.args.sweep);
        }
        self.args.only.iter().any(|o| o == name)
    }

    pub(crate) fn record(&mut self, key: &str, mut value: Value) -> anyhow::Result<()> {
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

    pub(crate) fn bin(&self, name: &str) -> PathBuf {
        self.args.bin_dir.join(name)
    }

    /// A lease of the broker of scenario group `group`, started when the group changes.
    pub(crate) fn broker(&mut self, group: &str) -> anyhow::Result<Broker> {
        if self.shared.as_ref().is_none_or(|b| b.group != group) {
            // The previous group's broker stops first: one broker at a time on the machine.
            self.shared = None;
            let broker = SharedBroker::start(&self.logs, group)?;
            self.warm_up(&broker.addr)?;
            self.shared = Some(broker);
        }
        Ok(self.shared.as_ref().expect("just started").lease(group))
    }

    pub(crate) fn load(
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

    pub(crate) fn ingest(
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

    pub(crate) fn processor(
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
        .args(["--raw-topic", &self.raw_topic])
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

    /// Readies a new broker for its group's runs, outside any of them. A fresh JVM compiles its
    /// hot paths during its first minute of work: without this the first run of each group
    /// paid for it (broker CPU 8–12 s against 3–4 s for the next runs; ingest 5.4k against
    /// 12.2k req/s). So the broker first takes 50 000 raw records through a consume → produce
    /// loop.
    fn warm_up(&mut self, brokers: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        if self.warm_up_records.is_empty() {
            self.warm_up_records = crate::gen::backlog(50_000, 7, SECRET);
        }
        let records = &self.warm_up_records;
        self.rt
            .block_on(kafka::create_topic(brokers, "bench.warm-up", 12))?;
        kafka::produce(brokers, "bench.warm-up", records, &[])?;
        kafka::pipe(
            brokers,
            "bench.warm-up",
            "bench.warm-up-out",
            "bench-warm-up",
            records.len() as u64,
            None,
        )?;
        println!(
            "[bench] broker warmed up in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// A fresh broker with the raw topic holding the backlog; records the fill as a broker-ceiling
    /// sample.
    pub(crate) fn filled_broker(&mut self, name: &str) -> anyhow::Result<(Broker, u64)> {
        let broker = self.broker(drain_group(name))?;
        self.drains += 1;
        self.raw_topic = format!("{RAW_TOPIC}.{name}.{}", self.drains);
        self.rt
            .block_on(kafka::create_topic(&broker.addr, &self.raw_topic, 12))?;
        let fill = kafka::produce(&broker.addr, &self.raw_topic, &self.backlog, &[])?;
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
}

/// The broker group a drain scenario runs in: one broker for every run of a kind of drainer,
/// so that each kind starts on a broker of the same age.
fn drain_group(key: &str) -> &'static str {
    match key {
        k if k.starts_with("pipe") => "pipe",
        k if k.starts_with("python") => "python",
        k if k.starts_with("benthos") => "benthos-processor",
        _ => "processor",
    }
}

/// A closed-loop run's record: the load report with the served process's and the broker's
/// memory and CPU (ingest and the Benthos ingest peer report alike).
pub(crate) fn closed_loop_record(
    report: &load::LoadReport,
    served: &RssReport,
    broker: &RssReport,
    load_avg: String,
) -> anyhow::Result<Value> {
    let mut v = serde_json::to_value(report)?;
    v["rss_peak_mb"] = json!(served.peak_mb);
    v["broker_rss_peak_mb"] = json!(broker.peak_mb);
    v["cpu_s"] = json!(served.cpu_s);
    v["broker_cpu_s"] = json!(broker.cpu_s);
    v["loadavg_before"] = json!(load_avg);
    Ok(v)
}

/// A scenario that fails is reported and skipped; the rest of the run goes on.
pub(crate) fn soft(result: anyhow::Result<()>) {
    if let Err(err) = result {
        eprintln!("[bench] scenario failed: {err:#}");
        println!("[bench] scenario failed: {err:#}");
    }
}

pub(crate) fn tail(text: &str, n: usize) -> String {
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
    let needs_backlog = [
        "pipe",
        "processor",
        "python",
        "quix",
        "sweep",
        "variant",
        "benthos",
        "benthos-processor",
    ];
    let mut suite = Suite {
        args,
        logs,
        rt,
        backlog: Vec::new(),
        results: BTreeMap::new(),
        sources,
        started: Instant::now(),
        shared: None,
        raw_topic: RAW_TOPIC.to_owned(),
        warm_up_records: Vec::new(),
        drains: 0,
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
        // Scaling past the cores: 4 processes share the 2 cores with the broker, so the row to
        // read is CPU-seconds per 1 000 records (what each added process costs), not records/s.
        for run in 0..suite.args.secondary_runs {
            soft(suite.drain_processor("processor_alo_x4", 4, "at-least-once", &[], run));
        }
        for run in 0..suite.args.secondary_runs {
            soft(suite.drain_processor("processor_eos_x4", 4, "exactly-once", &[], run));
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
    if ["benthos", "benthos-ingest", "benthos-processor"]
        .iter()
        .any(|s| suite.wants(s))
    {
        soft(suite.benthos(runs));
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
        // The processor's redelivery window (2 h by default) fills for its whole length by
        // design (~64 bytes per event id); at 60 s it is full after the first minute, so what
        // the run can show is whether anything else grows (BENCHMARKS.md, P3).
        let window = [("ZOOMSTREAM_REDELIVERY_WINDOW_SECS", "60")];
        soft(suite.open_loop("long", Some("exactly-once"), rate, secs, &window, 0));
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
pub(crate) fn json_report(key: &str, log: &Path, status: ExitStatus) -> anyhow::Result<Value> {
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
