//! The scenarios of the suite: the ceilings (HTTP no-op, acknowledged producer), ingest in a
//! closed and an open loop, the processor and its peers draining a backlog.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::json;

use crate::kafka::{self, E2e};
use crate::procs::{free_port, http_get, metric_sum, wait_for_port, Proc};
use crate::suite::*;

impl Suite {
    pub(crate) fn http_ceiling(&mut self) -> anyhow::Result<()> {
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
    pub(crate) fn acked_ceiling(&mut self) -> anyhow::Result<()> {
        for _ in 0..self.args.runs {
            let broker = self.broker("acked")?;
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

    pub(crate) fn ingest_closed(
        &mut self,
        key: &str,
        env: &[(&str, &str)],
        options: &[&str],
        runs: usize,
    ) -> anyhow::Result<()> {
        for run in 0..runs {
            let broker = self.broker("ingest")?;
            let load_avg = loadavg();
            let (ingest, url) = self.ingest(&broker, "ingest", env, options)?;
            let report = self.load(&url, None, self.args.duration, 200 + run as u64)?;
            let rss = ingest.stop(Duration::from_secs(10));
            let mut v = closed_loop_record(&report, &rss, &broker.stop(), load_avg)?;
            v["env"] = json!(format!("{env:?} {options:?}"));
            self.record(key, v)?;
        }
        Ok(())
    }

    pub(crate) fn ingest_max(&self) -> anyhow::Result<f64> {
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
    pub(crate) fn open_loop(
        &mut self,
        key: &str,
        delivery: Option<&str>,
        rate: f64,
        duration: f64,
        env: &[(&str, &str)],
        run: usize,
    ) -> anyhow::Result<()> {
        // Ingest alone shares the ingest runs' broker; with a processor and the end-to-end reader
        // behind it, a fresh broker per run, so that the reader sees only this run's records.
        let group = match delivery {
            None => "ingest".to_owned(),
            Some(_) => format!("{key}-{run}"),
        };
        let broker = self.broker(&group)?;
        // The processor behind reads what ingest writes.
        self.raw_topic = RAW_TOPIC.to_owned();
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
    pub(crate) fn drain_processor(
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
    pub(crate) fn drain_child(
        &mut self,
        key: &str,
        mut cmd_for: impl FnMut(&str, &str, u64, &str) -> Command,
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
        let proc = Proc::spawn(
            key,
            cmd_for(&broker.addr, &group, expect, &self.raw_topic),
            &self.logs,
        )?;
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

    pub(crate) fn pipe_cmd(
        &self,
        transactional: Option<usize>,
    ) -> impl FnMut(&str, &str, u64, &str) -> Command {
        let exe = std::env::current_exe().expect("own path");
        move |brokers: &str, group: &str, expect: u64, raw_topic: &str| {
            let mut cmd = Command::new(&exe);
            cmd.args([
                "pipe",
                "--brokers",
                brokers,
                "--topic",
                raw_topic,
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

    pub(crate) fn python_cmd(
        &self,
        script: &'static str,
    ) -> impl FnMut(&str, &str, u64, &str) -> Command {
        let python = if script.contains("quix") {
            self.args.quix_python.clone()
        } else {
            self.args.python.clone()
        };
        let sources = self.sources.clone();
        let script = PathBuf::from("bench/python").join(script);
        move |brokers: &str, group: &str, expect: u64, raw_topic: &str| {
            let mut cmd = Command::new(&python);
            cmd.arg(&script)
                .args([
                    "--brokers",
                    brokers,
                    "--group",
                    group,
                    "--topic",
                    raw_topic,
                    "--expect",
                    &expect.to_string(),
                ])
                .arg("--sources")
                .arg(&sources);
            cmd
        }
    }
}
