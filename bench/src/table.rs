//! The results table: medians (with the range of the runs), ratios to the ceilings, targets.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::suite::median;

pub(crate) type Results = BTreeMap<String, Vec<Value>>;

pub(crate) struct Stat {
    pub(crate) median: f64,
    min: f64,
    max: f64,
    n: usize,
}

fn field<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

pub(crate) fn stat(results: &Results, key: &str, path: &str) -> Option<Stat> {
    let mut values: Vec<f64> = results
        .get(key)?
        .iter()
        .filter_map(|v| field(v, path)?.as_f64())
        .collect();
    if values.is_empty() {
        return None;
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let n = values.len();
    Some(Stat {
        median: median(&mut values),
        min,
        max,
        n,
    })
}

/// Peak RSS over every process and run of a scenario (arrays of per-process peaks included).
fn peak(results: &Results, key: &str, path: &str) -> Option<f64> {
    let mut best: Option<f64> = None;
    for v in results.get(key)? {
        let vals: Vec<f64> = match field(v, path)? {
            Value::Array(a) => a.iter().filter_map(Value::as_f64).collect(),
            other => other.as_f64().into_iter().collect(),
        };
        for x in vals {
            best = Some(best.map_or(x, |b: f64| b.max(x)));
        }
    }
    best
}

pub(crate) fn loads(results: &Results, key: &str) -> String {
    results
        .get(key)
        .map(|runs| {
            runs.iter()
                .filter_map(|v| {
                    v["loadavg_before"]
                        .as_str()
                        .or(v["loadavg"].as_str())
                        .map(|s| s.split(' ').next().unwrap_or("").to_owned())
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

pub(crate) fn num(x: f64) -> String {
    if x >= 100.0 {
        format!("{:.0}", x)
    } else if x >= 10.0 {
        format!("{:.1}", x)
    } else {
        format!("{:.2}", x)
    }
}

pub(crate) fn fmt(s: &Stat) -> String {
    if s.n > 1 {
        format!(
            "{} ({}–{}, n={})",
            num(s.median),
            num(s.min),
            num(s.max),
            s.n
        )
    } else {
        num(s.median)
    }
}

pub(crate) fn verdict(ok: bool) -> &'static str {
    if ok {
        "**met**"
    } else {
        "**missed**"
    }
}

pub fn render(r: &Results) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "| # | figure | median (range, runs) | ceiling / ratio | target | 1-min load avg before each run |");
    let _ = writeln!(t, "| --- | --- | --- | --- | --- | --- |");
    let http = stat(r, "http_ceiling", "throughput_rps");
    let broker = stat(r, "broker_ceiling", "records_per_s");
    let mut row =
        |id: &str, figure: &str, value: String, ratio: String, target: String, key: &str| {
            let _ = writeln!(
                t,
                "| {id} | {figure} | {value} | {ratio} | {target} | {} |",
                loads(r, key)
            );
        };
    if let Some(h) = &http {
        let p99 = stat(r, "http_ceiling", "p99_ms")
            .map(|s| num(s.median))
            .unwrap_or_default();
        row(
            "C1",
            "HTTP ceiling: axum no-op handler, same bodies, closed loop (req/s)",
            fmt(h),
            format!("p99 {p99} ms"),
            "—".into(),
            "http_ceiling",
        );
    }
    if let Some(b) = &broker {
        let mb = stat(r, "broker_ceiling", "mb_per_s")
            .map(|s| num(s.median))
            .unwrap_or_default();
        row("C2", "broker ceiling: raw rdkafka producer, same raw records, acks=all + idempotence (rec/s; every backlog fill)", fmt(b), format!("{mb} MB/s"), "—".into(), "broker_ceiling");
    }
    let acked = stat(r, "acked_ceiling", "throughput_rps");
    if let Some(a) = &acked {
        let p99 = stat(r, "acked_ceiling", "p99_ms")
            .map(|s| num(s.median))
            .unwrap_or_default();
        row(
            "C2a",
            &format!("acknowledged-producer ceiling: 64 senders, each awaits its record's ack before the next, ingest's producer settings (rec/s; p99 {p99} ms)"),
            fmt(a),
            "—".into(),
            "—".into(),
            "acked_ceiling",
        );
    }
    let pipe = stat(r, "pipe", "in_per_s");
    if let Some(p) = &pipe {
        row(
            "C3",
            "pipe ceiling: raw consume→produce, no transform, at-least-once (rec/s)",
            fmt(p),
            "—".into(),
            "—".into(),
            "pipe",
        );
    }
    let pipe_eos = stat(r, "pipe_eos", "in_per_s");
    if let Some(p) = &pipe_eos {
        row(
            "C3t",
            "pipe ceiling in transactions (closed at 10 000 records or 100 ms, the processor's defaults) (rec/s)",
            fmt(p),
            "—".into(),
            "—".into(),
            "pipe_eos",
        );
    }
    let ceiling_ingest = match (&http, &broker) {
        (Some(h), Some(b)) => Some(h.median.min(b.median)),
        (Some(h), None) => Some(h.median),
        (None, Some(b)) => Some(b.median),
        _ => None,
    };
    if let Some(s) = stat(r, "ingest_closed", "throughput_rps") {
        // Issue 15's target is against C2a: what ingest does per webhook (wait for its own
        // acknowledgement), without HTTP, JSON and verification.
        let mut ratio = match ceiling_ingest {
            Some(c) => format!("{:.2} × min(C1, C2) = {}", s.median / c, num(c)),
            None => "—".into(),
        };
        let mut ok = false;
        if let Some(a) = &acked {
            let _ = write!(ratio, "; {:.2} × C2a", s.median / a.median);
            ok = s.median >= 0.8 * a.median;
        }
        let p99 = stat(r, "ingest_closed", "p99_ms")
            .map(|s| num(s.median))
            .unwrap_or_default();
        row(
            "1",
            &format!("ingest closed loop, 64 connections (req/s; p99 {p99} ms)"),
            fmt(&s),
            ratio,
            format!("≥ 0.8 × C2a: {}", verdict(ok)),
            "ingest_closed",
        );
    }
    for (key, label) in [
        ("open", "ingest alone"),
        ("e2e_eos", "exactly-once processor behind"),
        ("e2e_alo", "at-least-once processor behind"),
        ("e2e_low_eos", "exactly-once processor behind"),
        ("e2e_low_alo", "at-least-once processor behind"),
    ] {
        let share = if key.starts_with("e2e_low") {
            "10"
        } else {
            "50"
        };
        if let Some(s) = stat(r, key, "p99_ms") {
            let rate = r[key][0]["target_rps"].as_f64().unwrap_or(0.0);
            let p50 = stat(r, key, "p50_ms")
                .map(|s| num(s.median))
                .unwrap_or_default();
            let p90 = stat(r, key, "p90_ms")
                .map(|s| num(s.median))
                .unwrap_or_default();
            let p999 = stat(r, key, "p999_ms")
                .map(|s| num(s.median))
                .unwrap_or_default();
            row(
                "2",
                &format!("ingest open loop at {share} % of its max ({} req/s), {label}: ingest p99 ms (p50 {p50}, p90 {p90}, p99.9 {p999})", num(rate)),
                fmt(&s),
                "—".into(),
                if share == "50" { format!("p99 ≤ 25 ms: {}", verdict(s.median <= 25.0)) } else { "(diagnostic)".into() },
                key,
            );
        }
        if let Some(s) = stat(r, key, "e2e.p99_ms") {
            let p50 = stat(r, key, "e2e.p50_ms")
                .map(|s| num(s.median))
                .unwrap_or_default();
            let p999 = stat(r, key, "e2e.p999_ms")
                .map(|s| num(s.median))
                .unwrap_or_default();
            row(
                "4",
                &format!("end-to-end webhook received → source record read (read_committed), {share} % load, {label}: p99 ms (p50 {p50}, p99.9 {p999})"),
                fmt(&s),
                "—".into(),
                if share == "50" { format!("p99 ≤ 100 ms: {}", verdict(s.median <= 100.0)) } else { "(diagnostic)".into() },
                key,
            );
        }
    }
    let peer = stat(r, "python_confluent", "in_per_s");
    for (key, label) in [
        ("processor_alo", "processor, 1 process, at-least-once"),
        (
            "processor_eos",
            "processor, 1 process, exactly-once (default)",
        ),
        ("processor_alo_x2", "processor, 2 processes, at-least-once"),
        ("processor_eos_x2", "processor, 2 processes, exactly-once"),
        ("processor_alo_x4", "processor, 4 processes, at-least-once"),
        ("processor_eos_x4", "processor, 4 processes, exactly-once"),
    ] {
        if let Some(s) = stat(r, key, "in_per_s") {
            let out = stat(r, key, "out_per_s")
                .map(|s| num(s.median))
                .unwrap_or_default();
            // CPU-seconds per 1 000 raw records, all processes together: the scaling curve in a
            // unit that still means something when 4 processes share 2 cores.
            let cpu = stat(r, key, "cpu_us_per_record")
                .map(|s| format!("{:.3}", s.median / 1000.0))
                .unwrap_or_default();
            let eos = key.starts_with("processor_eos");
            // Issue 15: at-least-once ≥ 0.5 × C3, exactly-once ≥ 0.7 × C3t, both ≥ 3 × the
            // (at-least-once) confluent-kafka peer.
            let (ceiling, name, share) = if eos {
                (&pipe_eos, "C3t", 0.7)
            } else {
                (&pipe, "C3", 0.5)
            };
            let mut ratio = String::new();
            let mut target = String::new();
            if let Some(c) = ceiling {
                let _ = write!(ratio, "{:.2} × {name}", s.median / c.median);
                let _ = write!(
                    target,
                    "≥ {share} × {name}: {}",
                    verdict(s.median >= share * c.median)
                );
            }
            if let Some(p) = &peer {
                let _ = write!(ratio, "; {:.1} × Python peer", s.median / p.median);
                let _ = write!(
                    target,
                    "; ≥ 3 × peer: {}",
                    verdict(s.median >= 3.0 * p.median)
                );
            }
            row(
                "3",
                &format!(
                    "{label}: backlog drain, records in/s (out {out}/s; {cpu} CPU-s per 1 000 in)"
                ),
                fmt(&s),
                ratio,
                target,
                key,
            );
        }
    }
    for (key, label) in [
        (
            "python_confluent",
            "Python peer: confluent-kafka + fastavro, same split + Avro",
        ),
        ("python_quix", "Python peer: quixstreams"),
    ] {
        if let Some(s) = stat(r, key, "in_per_s") {
            let out = stat(r, key, "out_per_s")
                .map(|s| num(s.median))
                .unwrap_or_default();
            let ratio = pipe
                .as_ref()
                .map(|c| format!("{:.2} × C3", s.median / c.median))
                .unwrap_or_default();
            row(
                "P",
                &format!("{label}: records in/s (out {out}/s)"),
                fmt(&s),
                ratio,
                "—".into(),
                key,
            );
        }
    }
    t.push_str(&crate::benthos::rows(r));
    // Memory.
    let mut mem = String::new();
    for (key, path, who) in [
        ("http_ceiling", "rss_peak_mb", "HTTP no-op"),
        ("ingest_closed", "rss_peak_mb", "ingest (closed loop)"),
        ("open", "ingest_rss_peak_mb", "ingest (open loop)"),
        (
            "e2e_eos",
            "processor_rss_peak_mb",
            "processor EOS (e2e, 50 % load)",
        ),
        (
            "e2e_alo",
            "processor_rss_peak_mb",
            "processor ALO (e2e, 50 % load)",
        ),
        ("pipe", "rss_peak_mb", "pipe"),
        ("processor_alo", "rss_peak_mb", "processor ALO (drain)"),
        ("processor_eos", "rss_peak_mb", "processor EOS (drain)"),
        (
            "processor_alo_x2",
            "rss_peak_mb",
            "processor ALO ×2 (drain, each)",
        ),
        (
            "processor_eos_x2",
            "rss_peak_mb",
            "processor EOS ×2 (drain, each)",
        ),
        (
            "processor_alo_x4",
            "rss_peak_mb",
            "processor ALO ×4 (drain, each)",
        ),
        (
            "processor_eos_x4",
            "rss_peak_mb",
            "processor EOS ×4 (drain, each)",
        ),
        ("python_confluent", "rss_peak_mb", "Python confluent peer"),
        ("python_quix", "rss_peak_mb", "Python quix peer"),
        ("broker_ceiling", "__none", ""),
    ] {
        if let Some(p) = peak(r, key, path) {
            let _ = write!(mem, "{who} {p:.0}; ");
        }
    }
    if !mem.is_empty() {
        let _ = writeln!(
            t,
            "| 5 | peak RSS (VmHWM, MiB, highest of the runs) | {} | — | — | |",
            mem.trim_end_matches("; ")
        );
    }
    if let Some(long) = r.get("long").and_then(|v| v.first()) {
        let secs = long["seconds"].as_f64().unwrap_or(0.0);
        let f = |k: &str| {
            let x = &long[k];
            format!(
                "{:.0} → {:.0} MiB ({:.2}×)",
                x["early_mb"].as_f64().unwrap_or(0.0),
                x["late_mb"].as_f64().unwrap_or(0.0),
                x["ratio"].as_f64().unwrap_or(0.0)
            )
        };
        let ok = ["ingest_rss_flatness", "processor_rss_flatness"]
            .iter()
            .all(|k| long[k]["ratio"].as_f64().is_some_and(|x| x <= 1.10));
        let _ = writeln!(
            t,
            "| 6 | RSS flatness, {secs:.0} s at 50 % load, processor redelivery window 60 s (mean VmRSS of 2nd fifth → last fifth); ingest served {} of {} req/s scheduled ({} not sent by the end), p99 {} ms | ingest {}; processor {} | — | flat (≤ 1.10×): {} | {} |",
            num(long["throughput_rps"].as_f64().unwrap_or(0.0)),
            num(long["target_rps"].as_f64().unwrap_or(0.0)),
            long["unsent"].as_u64().unwrap_or(0),
            num(long["p99_ms"].as_f64().unwrap_or(0.0)),
            f("ingest_rss_flatness"),
            f("processor_rss_flatness"),
            verdict(ok),
            loads(r, "long")
        );
    }
    // Sweep.
    let sweep: Vec<(&String, &Vec<Value>)> =
        r.iter().filter(|(k, _)| k.starts_with("sweep_")).collect();
    if !sweep.is_empty() {
        let _ = writeln!(
            t,
            "\nSettings sweep (one run each):\n\n| variant | result | load |\n| --- | --- | --- |"
        );
        for (k, runs) in sweep {
            let v = &runs[0];
            let res = if let Some(x) = v["in_per_s"].as_f64() {
                format!(
                    "{} rec/s in, {} out/s, {} batches, commit {} ms each, {} µs CPU per record, peak RSS {:.0} MiB",
                    num(x),
                    num(v["out_per_s"].as_f64().unwrap_or(0.0)),
                    v["commits"].as_f64().unwrap_or(0.0),
                    num(v["commit_ms_mean"].as_f64().unwrap_or(0.0)),
                    num(v["cpu_us_per_record"].as_f64().unwrap_or(0.0)),
                    peak(r, k, "rss_peak_mb").unwrap_or(0.0)
                )
            } else {
                format!(
                    "{} req/s, p99 {} ms, peak RSS {:.0} MiB",
                    num(v["throughput_rps"].as_f64().unwrap_or(0.0)),
                    num(v["p99_ms"].as_f64().unwrap_or(0.0)),
                    v["rss_peak_mb"].as_f64().unwrap_or(0.0)
                )
            };
            let _ = writeln!(
                t,
                "| {k} | {res} | {} |",
                v["loadavg_before"].as_str().unwrap_or("")
            );
        }
    }
    t
}
