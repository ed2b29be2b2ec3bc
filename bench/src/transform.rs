//! The processor's transform alone, in process: `zoomstream_processors::route::Router` over the
//! backlog's raw records, no Kafka. Tells how much of a drain is the transform's CPU, and is
//! what callgrind profiles (deterministic instruction counts).

use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use serde::Serialize;
use zoomstream_processors::route::{Output, RawMessage, Route, Router};
use zoomstream_schemas::Apps;

#[derive(Debug, Serialize)]
pub struct TransformReport {
    pub records_in: u64,
    pub records_out: u64,
    pub dead_letters: u64,
    pub seconds: f64,
    pub us_per_record: f64,
    pub records_per_s: f64,
}

pub fn router(sources: &Path) -> anyhow::Result<Router> {
    let file = zoomstream_schemas::sources::load(sources)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("loading sources")?;
    let routes = file.sources.into_iter().map(Route::single_object).collect();
    Ok(Router::new(routes, Apps::builtin()))
}

pub fn run(sources: &Path, records: usize, repeat: usize) -> anyhow::Result<TransformReport> {
    let router = router(sources)?;
    let backlog = crate::gen::backlog(records, 42, crate::suite::SECRET);
    let header = |r: &crate::gen::RawRecord, name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    };
    use zoomstream_schemas::raw::headers as h;
    // (body, app, event id, received at): the parts of a raw record the router reads.
    type Parts = (Vec<u8>, Option<String>, Option<String>, Option<String>);
    let msgs: Vec<Parts> = backlog
        .iter()
        .map(|r| {
            (
                r.body.clone(),
                header(r, h::APP),
                header(r, h::EVENT_ID),
                header(r, h::RECEIVED_AT),
            )
        })
        .collect();
    let (mut out, mut dead, mut n) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    for _ in 0..repeat {
        for (payload, app, event_id, received_at) in &msgs {
            let msg = RawMessage {
                payload: Some(payload),
                app: app.as_deref(),
                event_id: event_id.as_deref(),
                received_at: received_at.as_deref(),
            };
            for o in router.route(&msg) {
                match o {
                    Output::Record { bytes, .. } => {
                        std::hint::black_box(bytes);
                        out += 1
                    }
                    Output::DeadLetter(_) => dead += 1,
                }
            }
            n += 1;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(TransformReport {
        records_in: n,
        records_out: out,
        dead_letters: dead,
        seconds,
        us_per_record: seconds * 1e6 / n as f64,
        records_per_s: n as f64 / seconds,
    })
}

#[derive(Debug, Serialize)]
pub struct IngestPartsReport {
    pub requests: usize,
    pub verify_us: f64,
    pub parse_strict_us: f64,
    pub event_id_us: f64,
    pub partition_key_us: f64,
    pub total_us: f64,
}

/// The CPU-only steps ingest runs per webhook (verify, strict parse, event id, key), timed one
/// by one over generated webhooks of the mix.
pub fn ingest_parts(requests: usize) -> anyhow::Result<IngestPartsReport> {
    use std::time::Duration;
    use zoomstream_ingest::verify::{sign, Verifier};
    let mut generator = crate::gen::Generator::new(9);
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let hooks: Vec<_> = (0..requests)
        .map(|_| {
            let w = generator.next();
            let sig = sign(crate::suite::SECRET, &ts.to_string(), &w.body);
            (w, sig)
        })
        .collect();
    let verifier = Verifier::new(crate::suite::SECRET.to_owned(), Duration::from_secs(300));
    let t = Instant::now();
    for (w, sig) in &hooks {
        std::hint::black_box(
            verifier
                .verify(Some(&ts.to_string()), Some(sig), &w.body, ts)
                .is_ok(),
        );
    }
    let verify = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let parsed: Vec<_> = hooks
        .iter()
        .map(|(w, _)| zoomstream_ingest::body::parse_strict(&w.body).expect("JSON"))
        .collect();
    let parse = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for ((w, _), v) in hooks.iter().zip(&parsed) {
        std::hint::black_box(zoomstream_schemas::raw::event_id(w.app, v));
    }
    let event_id = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for v in &parsed {
        std::hint::black_box(zoomstream_schemas::raw::partition_key(v));
    }
    let key = t.elapsed().as_secs_f64();
    let per = |s: f64| s * 1e6 / requests as f64;
    Ok(IngestPartsReport {
        requests,
        verify_us: per(verify),
        parse_strict_us: per(parse),
        event_id_us: per(event_id),
        partition_key_us: per(key),
        total_us: per(verify + parse + event_id + key),
    })
}
