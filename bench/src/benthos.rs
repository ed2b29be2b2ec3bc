//! The Benthos peers (bench/benthos/*.yaml, Benthos v4.27.0 from scripts/install-benthos): the
//! ingest peer (http_server → Kafka) under the same closed-loop load as `ingest_closed`, and the
//! processor peer (Kafka → bloblang split and routing → Avro → Kafka) draining the same backlog
//! as `drain_processor`, with their rows in the table. Without the binary the suite goes on and
//! the table says why.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{json, Value};

use crate::kafka;
use crate::procs::{free_port, http_get, metric_sum, wait_for_port, Proc};
use crate::suite::*;
use crate::table::{fmt, loads, num, stat, verdict, Results};

const VERSION: &str = "4.27.0";

/// `ZOOMSTREAM_BENTHOS` (scripts/bench sets it from scripts/install-benthos), else the cache
/// scripts/install-benthos builds into.
fn benthos_bin() -> Option<PathBuf> {
    let bin = std::env::var_os("ZOOMSTREAM_BENTHOS")
        .map(PathBuf::from)
        .or_else(|| {
            let cache = std::env::var_os("ZOOMSTREAM_CACHE_DIR")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("XDG_CACHE_HOME").map(|c| PathBuf::from(c).join("zoomstream"))
                })
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/zoomstream"))
                })?;
            Some(cache.join(format!("benthos-{VERSION}/benthos")))
        })?;
    bin.is_file().then_some(bin)
}

impl Suite {
    /// The `benthos`, `benthos-ingest` and `benthos-processor` scenarios.
    pub(crate) fn benthos(&mut self, runs: usize) -> anyhow::Result<()> {
        let Some(bin) = benthos_bin() else {
            return self.record(
                "benthos_missing",
                json!({"note": format!("no Benthos {VERSION} binary (run scripts/install-benthos or set ZOOMSTREAM_BENTHOS)")}),
            );
        };
        let all = self.args.only.iter().any(|o| o == "benthos");
        if all || self.wants("benthos-ingest") {
            for run in 0..runs {
                soft(self.benthos_ingest(&bin, run));
            }
        }
        if all || self.wants("benthos-processor") {
            for run in 0..runs {
                soft(self.benthos_processor(&bin, run));
            }
        }
        Ok(())
    }

    /// The ingest peer under `ingest_closed`'s load (same connections, duration, seeds).
    fn benthos_ingest(&mut self, bin: &PathBuf, run: usize) -> anyhow::Result<()> {
        let broker = self.broker("ingest")?;
        // ingest creates its raw topic (12 partitions) at start; Benthos gets it made.
        self.rt
            .block_on(kafka::create_topic(&broker.addr, RAW_TOPIC, 12))?;
        let load_avg = loadavg();
        let port = free_port()?;
        let mut cmd = Command::new(bin);
        cmd.args(["-c", "bench/benthos/ingest.yaml"])
            .env("BENTHOS_LISTEN", format!("127.0.0.1:{port}"))
            .env("KAFKA_BROKERS", &broker.addr)
            .env("RAW_TOPIC", RAW_TOPIC)
            .env("ZOOM_SECRET", SECRET)
            .env("ZOOM_ADMIN_SECRET", SECRET);
        let proc = Proc::spawn("benthos-ingest", cmd, &self.logs)?;
        wait_for_port(port, Duration::from_secs(30))?;
        let report = self.load(
            &format!("http://127.0.0.1:{port}"),
            None,
            self.args.duration,
            200 + run as u64,
        )?;
        let rss = proc.stop(Duration::from_secs(10));
        let v = closed_loop_record(&report, &rss, &broker.stop(), load_avg)?;
        self.record("benthos_ingest", v)
    }

    /// The processor peer draining the backlog; rates from its first record to its last
    /// output, read from its Prometheus metrics every 50 ms.
    fn benthos_processor(&mut self, bin: &PathBuf, run: usize) -> anyhow::Result<()> {
        let expected_out = self.expected_outputs()?;
        let (broker, expect) = self.filled_broker("benthos_processor")?;
        // The processor creates its source topics (6 partitions) at start; Benthos gets them
        // made, outside the timed drain.
        for topic in kafka::source_schemas(&self.sources)?.keys() {
            self.rt
                .block_on(kafka::create_topic(&broker.addr, topic, 6))?;
        }
        let load_avg = loadavg();
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let schemas = self.sources.parent().unwrap_or(&self.sources).to_owned();
        let mut cmd = Command::new(bin);
        cmd.args(["-c", "bench/benthos/processor.yaml"])
            .env("BENTHOS_HTTP", &addr)
            .env("KAFKA_BROKERS", &broker.addr)
            .env("RAW_TOPIC", &self.raw_topic)
            .env("GROUP", format!("bench-benthos-{run}"))
            .env("SCHEMAS", &schemas);
        let mut proc = Proc::spawn("benthos-processor", cmd, &self.logs)?;
        let launched = Instant::now();
        let scrape = || -> (f64, f64, f64) {
            match http_get(&addr, "/metrics") {
                Ok((_, text)) => (
                    metric_sum(&text, "input_received"),
                    metric_sum(&text, "output_sent"),
                    metric_sum(&text, "output_error") + metric_sum(&text, "processor_error"),
                ),
                Err(_) => (0.0, 0.0, 0.0),
            }
        };
        let mut first: Option<(Instant, f64)> = None;
        let deadline = launched + Duration::from_secs(900);
        let (end, last) = loop {
            let now = Instant::now();
            let sums = scrape();
            if first.is_none() && sums.0 > 0.0 {
                first = Some((now, sums.0));
            }
            if sums.0 >= expect as f64 && sums.1 >= expected_out as f64 {
                break (now, sums);
            }
            if now > deadline {
                bail!(
                    "benthos: {} of {expect} records in, {} of {expected_out} out in 900 s",
                    sums.0,
                    sums.1
                );
            }
            if !proc.alive() {
                bail!("benthos exited (log: {})", proc.log.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let (t0, in0) = first.expect("records were counted");
        let seconds = end.duration_since(t0).as_secs_f64().max(1e-3);
        let rss = proc.stop(Duration::from_secs(15));
        let broker_rss = broker.stop();
        let cpu = rss.cpu_s.unwrap_or(0.0);
        self.record(
            "benthos_processor",
            json!({
                "records_in": last.0, "records_out": last.1, "errors": last.2,
                "expected": expect, "expected_out": expected_out,
                "seconds": seconds, "in_per_s": (last.0 - in0) / seconds, "out_per_s": last.1 / seconds,
                "startup_s": t0.duration_since(launched).as_secs_f64(),
                "rss_peak_mb": rss.peak_mb, "cpu_s": cpu, "cpu_s_per_1000": cpu / last.0 * 1000.0,
                "broker_rss_peak_mb": broker_rss.peak_mb, "broker_cpu_s": broker_rss.cpu_s,
                "loadavg_before": load_avg,
            }),
        )
    }

    /// The source records zoomstream-processor's router makes of the backlog: what the peer
    /// must publish.
    fn expected_outputs(&self) -> anyhow::Result<u64> {
        use zoomstream_processors::route::{Output, RawMessage};
        use zoomstream_schemas::raw::headers as h;
        let router = crate::transform::router(&self.sources)?;
        let mut out = 0u64;
        for r in &self.backlog {
            let header = |name: &str| {
                r.headers
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.as_str())
            };
            let msg = RawMessage {
                payload: Some(&r.body),
                app: header(h::APP),
                event_id: header(h::EVENT_ID),
                received_at: header(h::RECEIVED_AT),
            };
            out += router
                .route(&msg)
                .into_iter()
                .filter(|o| matches!(o, Output::Record { .. }))
                .count() as u64;
        }
        Ok(out)
    }
}

/// The Benthos rows of the table: each peer, and ours ÷ the peer against the 1.5× targets.
pub(crate) fn rows(r: &Results) -> String {
    let mut t = String::new();
    if let Some(missing) = r.get("benthos_missing").and_then(|v| v.first()) {
        let _ = writeln!(
            t,
            "| B | Benthos peers not run: {} | — | — | — | |",
            missing["note"].as_str().unwrap_or("")
        );
    }
    if let Some(b) = stat(r, "benthos_ingest", "throughput_rps") {
        let p99 = stat(r, "benthos_ingest", "p99_ms")
            .map(|s| num(s.median))
            .unwrap_or_default();
        // CPU seconds per 1000 requests served, from the medians of the runs.
        let cpu_per_1000 = |key: &str| -> Option<f64> {
            Some(stat(r, key, "cpu_s")?.median / stat(r, key, "ok")?.median * 1000.0)
        };
        let cpu = cpu_per_1000("benthos_ingest").map(num).unwrap_or_default();
        let (mut ratio, target) = match stat(r, "ingest_closed", "throughput_rps") {
            Some(i) => (
                format!("ingest ÷ Benthos = {:.2}", i.median / b.median),
                format!(
                    "ingest ≥ 1.5 × Benthos: {}",
                    verdict(i.median >= 1.5 * b.median)
                ),
            ),
            None => ("—".into(), "(run `ingest` too)".into()),
        };
        if let (Some(ours), Some(theirs)) = (
            cpu_per_1000("ingest_closed"),
            cpu_per_1000("benthos_ingest"),
        ) {
            let _ = write!(
                ratio,
                "; CPU per request: Benthos {:.2} × ingest's ({} CPU-s per 1000)",
                theirs / ours,
                num(ours)
            );
        }
        let _ = writeln!(
            t,
            "| B1 | Benthos {VERSION} ingest peer: http_server → kafka_franz, acks=all + idempotence, signature checked, 64 connections, closed loop (req/s; p99 {p99} ms, {cpu} CPU-s per 1000 requests) | {} | {ratio} | {target} | {} |",
            fmt(&b),
            loads(r, "benthos_ingest")
        );
    }
    if let Some(b) = stat(r, "benthos_processor", "in_per_s") {
        let first = r["benthos_processor"]
            .first()
            .cloned()
            .unwrap_or(Value::Null);
        let out = stat(r, "benthos_processor", "out_per_s")
            .map(|s| num(s.median))
            .unwrap_or_default();
        let cpu = stat(r, "benthos_processor", "cpu_s_per_1000")
            .map(|s| num(s.median))
            .unwrap_or_default();
        let mut ratio = String::new();
        let mut target = String::new();
        for (key, label) in [("processor_alo", "ALO"), ("processor_eos", "EOS")] {
            if let Some(p) = stat(r, key, "in_per_s") {
                let sep = if ratio.is_empty() { "" } else { "; " };
                let _ = write!(
                    ratio,
                    "{sep}processor {label} ÷ Benthos = {:.2}",
                    p.median / b.median
                );
                let _ = write!(
                    target,
                    "{sep}{label} ≥ 1.5 × Benthos: {}",
                    verdict(p.median >= 1.5 * b.median)
                );
            }
        }
        if ratio.is_empty() {
            ratio = "—".into();
            target = "(run `processor` too)".into();
        }
        let _ = writeln!(
            t,
            "| B2 | Benthos {VERSION} processor peer: kafka_franz → bloblang routing + split → Avro → kafka_franz, at-least-once: records in/s (out {out}/s, {} of {} expected outputs; {cpu} CPU-s per 1000 records) | {} | {ratio} | {target} | {} |",
            first["records_out"].as_f64().unwrap_or(0.0),
            first["expected_out"].as_u64().unwrap_or(0),
            fmt(&b),
            loads(r, "benthos_processor")
        );
    }
    t
}
