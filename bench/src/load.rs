//! The HTTP load generator: signed Zoom webhooks over N keep-alive HTTP/1.1 connections,
//! closed-loop (each connection sends its next request when the previous answer arrived) or
//! open-loop at a fixed rate (request i is due at start + i/rate; its latency is measured from
//! that intended time, so a stalled server is charged for every request it held back: no
//! coordinated omission).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;

use crate::gen::Generator;

#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Base URL of the service (ingest or the HTTP no-op ceiling).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Secret token both apps are signed with.
    #[arg(long, default_value = "bench-secret")]
    pub secret: String,
    /// Concurrent connections.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Open-loop rate in requests per second; closed-loop when absent.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Seed of the webhook generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub mode: String,
    pub connections: usize,
    pub target_rps: Option<f64>,
    pub seconds: f64,
    pub ok: u64,
    pub errors: u64,
    /// Open loop: requests not sent by the end of the run plus its grace period (the service
    /// fell behind); each counted in the latencies as at least (end − intended send time).
    pub unsent: u64,
    pub throughput_rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

pub fn new_histogram() -> Histogram<u64> {
    // Microseconds, 1 µs .. 120 s, 3 significant digits.
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid bounds")
}

struct Shared {
    next: AtomicU64,
    stop: AtomicBool,
    errors: AtomicU64,
    unsent: AtomicU64,
    measuring_from: Instant,
    start: Instant,
}

async fn connect(authority: &str) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(authority)
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn authority(url: &str) -> anyhow::Result<String> {
    let rest = url.strip_prefix("http://").context("only http:// URLs")?;
    Ok(rest.split('/').next().unwrap_or(rest).to_owned())
}

/// Sends one webhook; `Ok(true)` when answered 200.
async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    authority: &str,
    path: &str,
    ts: &str,
    signature: &str,
    request_id: u64,
    body: Vec<u8>,
) -> anyhow::Result<bool> {
    sender.ready().await?;
    let req = Request::post(path)
        .header("host", authority)
        .header("content-type", "application/json; charset=utf-8")
        .header("user-agent", "Zoom Marketplace/1.0a")
        .header("x-zm-request-timestamp", ts)
        .header("x-zm-signature", signature)
        .header("x-zm-request-id", format!("bench_{request_id:016x}"))
        .body(Full::new(Bytes::from(body)))?;
    let resp = sender.send_request(req).await?;
    let ok = resp.status() == 200;
    resp.into_body().collect().await?;
    Ok(ok)
}

async fn worker(
    id: usize,
    args: Arc<LoadArgs>,
    shared: Arc<Shared>,
    interval: Option<Duration>,
    total: u64,
) -> anyhow::Result<Histogram<u64>> {
    let authority = authority(&args.url)?;
    let base = args.url.trim_end_matches('/').to_owned();
    let base_path = base
        .strip_prefix(&format!("http://{authority}"))
        .unwrap_or("")
        .to_owned();
    let mut sender = connect(&authority).await?;
    let mut generator = Generator::new(args.seed.wrapping_mul(1000).wrapping_add(id as u64));
    let mut hist = new_histogram();
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if interval.is_some() && i >= total {
            break;
        }
        if shared.stop.load(Ordering::Relaxed) {
            // Picked but never sent: the open loop ran out of time (counted by `run`).
            break;
        }
        let webhook = generator.next();
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            .to_string();
        let signature = zoomstream_ingest::verify::sign(&args.secret, &ts, &webhook.body);
        let path = format!("{base_path}/webhooks/{}", webhook.app.as_str());
        let intended = match interval {
            Some(interval) => {
                let due = shared.start + interval.mul_f64(i as f64);
                tokio::time::sleep_until(due.into()).await;
                due
            }
            None => Instant::now(),
        };
        let result = send(
            &mut sender,
            &authority,
            &path,
            &ts,
            &signature,
            i,
            webhook.body,
        )
        .await;
        let done = Instant::now();
        match result {
            Ok(true) => {
                if intended >= shared.measuring_from {
                    hist.saturating_record(done.duration_since(intended).as_micros().max(1) as u64);
                }
            }
            Ok(false) => {
                if intended >= shared.measuring_from {
                    shared.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(_) => {
                if intended >= shared.measuring_from {
                    shared.errors.fetch_add(1, Ordering::Relaxed);
                }
                // The connection broke: open a new one.
                tokio::time::sleep(Duration::from_millis(10)).await;
                sender = connect(&authority).await?;
            }
        }
    }
    Ok(hist)
}

/// Runs the load and returns the latency histogram's summary over the measured period.
pub async fn run(args: LoadArgs) -> anyhow::Result<LoadReport> {
    let args = Arc::new(args);
    let start = Instant::now() + Duration::from_millis(50);
    let warmup = Duration::from_secs_f64(args.warmup);
    let measured = Duration::from_secs_f64(args.duration);
    let shared = Arc::new(Shared {
        next: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        errors: AtomicU64::new(0),
        unsent: AtomicU64::new(0),
        measuring_from: start + warmup,
        start,
    });
    let interval = args.rate.map(|r| Duration::from_secs_f64(1.0 / r));
    let total = args.rate.map_or(u64::MAX, |r| {
        (r * (args.warmup + args.duration)).round() as u64
    });
    let mut tasks = Vec::new();
    for id in 0..args.connections {
        tasks.push(tokio::spawn(worker(
            id,
            args.clone(),
            shared.clone(),
            interval,
            total,
        )));
    }
    // Closed loop: stop at the end. Open loop: stop at the end plus a grace period, whatever
    // is left (a service that fell behind must not make the run last for ever).
    let hard_stop = match interval {
        None => start + warmup + measured,
        Some(_) => {
            start + warmup + measured + Duration::from_secs_f64((args.duration * 0.1).max(10.0))
        }
    };
    {
        let shared = shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(hard_stop.into()).await;
            shared.stop.store(true, Ordering::Relaxed);
        });
    }
    let mut hist = new_histogram();
    for task in tasks {
        hist.add(task.await.context("load worker panicked")??)?;
    }
    if let Some(interval) = interval {
        // Every measured request not sent (picked by a worker that stopped, or never picked)
        // is late by at least the time from its intended send to the stop; they are the last
        // ones of the schedule.
        let stopped = Instant::now().max(hard_stop);
        let sent = hist.len() + shared.errors.load(Ordering::Relaxed);
        let measured_total = (0..total)
            .filter(|&i| start + interval.mul_f64(i as f64) >= shared.measuring_from)
            .count() as u64;
        let unsent = measured_total.saturating_sub(sent);
        // Attribute the unsent to the latest intended times (they are the ones left over).
        for i in total.saturating_sub(unsent)..total {
            let intended = start + interval.mul_f64(i as f64);
            hist.saturating_record(
                stopped
                    .saturating_duration_since(intended)
                    .as_micros()
                    .max(1) as u64,
            );
        }
        shared.unsent.store(unsent, Ordering::Relaxed);
    }
    Ok(report(
        args.rate,
        args.connections,
        measured.as_secs_f64(),
        &hist,
        shared.errors.load(Ordering::Relaxed),
        shared.unsent.load(Ordering::Relaxed),
    ))
}

/// The report of a run from its latency histogram (µs; unsent requests included, as above).
/// `rate`: the open loop's target; `None` for a closed loop.
pub fn report(
    rate: Option<f64>,
    connections: usize,
    seconds: f64,
    hist: &Histogram<u64>,
    errors: u64,
    unsent: u64,
) -> LoadReport {
    let q = |p: f64| hist.value_at_quantile(p) as f64 / 1000.0;
    let ok = hist.len() - unsent;
    LoadReport {
        mode: if rate.is_some() {
            "open".into()
        } else {
            "closed".into()
        },
        connections,
        target_rps: rate,
        seconds,
        ok,
        errors,
        unsent,
        throughput_rps: ok as f64 / seconds,
        p50_ms: q(0.50),
        p90_ms: q(0.90),
        p99_ms: q(0.99),
        p999_ms: q(0.999),
        max_ms: hist.max() as f64 / 1000.0,
    }
}
