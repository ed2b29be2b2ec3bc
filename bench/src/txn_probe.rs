//! `zoomstream-bench txn-probe`: how long a transaction commit takes on a broker and this
//! client, apart from everything else the processor does (BENCHMARKS.md, P2).

use std::time::{Duration, Instant};

use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use crate::kafka::{client, wait_acknowledged, Acks};

/// How long a transaction commit takes on this broker and client, with the producer served by
/// rdkafka's ThreadedProducer (as the processor) or by the caller (BaseProducer, polled).
pub fn txn_probe(
    brokers: &str,
    topic: &str,
    transactions: usize,
    per_txn: usize,
    threaded: bool,
    waits: bool,
    extra: &[(String, String)],
) -> anyhow::Result<serde_json::Value> {
    use rdkafka::producer::BaseProducer;
    let mut cfg = client(
        brokers,
        &[
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("linger.ms", "5"),
            (
                "transactional.id",
                if threaded {
                    "probe-threaded"
                } else {
                    "probe-base"
                },
            ),
        ],
    );
    for (k, v) in extra {
        cfg.set(k, v);
    }
    let payload = vec![b'x'; 700];
    let mut commits = Vec::new();
    let started = Instant::now();
    if threaded {
        let p: ThreadedProducer<Acks> = cfg.create_with_context(Acks::default())?;
        p.init_transactions(Duration::from_secs(30))?;
        for _ in 0..transactions {
            p.begin_transaction()?;
            for _ in 0..per_txn {
                p.send(BaseRecord::<[u8], [u8]>::to(topic).payload(&payload[..]))
                    .map_err(|(e, _)| e)?;
            }
            let t = Instant::now();
            if waits {
                wait_acknowledged(&p)?;
            }
            p.commit_transaction(Duration::from_secs(10))?;
            commits.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    } else {
        let p: BaseProducer<Acks> = cfg.create_with_context(Acks::default())?;
        p.init_transactions(Duration::from_secs(30))?;
        for _ in 0..transactions {
            p.begin_transaction()?;
            for _ in 0..per_txn {
                p.send(BaseRecord::<[u8], [u8]>::to(topic).payload(&payload[..]))
                    .map_err(|(e, _)| e)?;
                p.poll(Duration::ZERO);
            }
            let t = Instant::now();
            while waits && p.in_flight_count() > 0 {
                p.poll(Duration::from_millis(1));
            }
            p.commit_transaction(Duration::from_secs(10))?;
            commits.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let total = started.elapsed().as_secs_f64();
    let mut sorted = commits.clone();
    let p50 = crate::suite::median(&mut sorted);
    Ok(
        serde_json::json!({"threaded": threaded, "wait_acked": waits, "transactions": transactions, "per_txn": per_txn,
        "commit_ms_p50": p50, "commit_ms_max": sorted.last(), "records_per_s": (transactions * per_txn) as f64 / total}),
    )
}
