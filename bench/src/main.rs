//! zoomstream-bench: the load generator, the ceilings and the whole benchmark suite.
//!
//! - `load`: signed Zoom webhooks against ingest (or anything), closed-loop or open-loop,
//!   latency percentiles from an HDR histogram;
//! - `http-noop`: the HTTP ceiling server (axum, handler reads the body and answers);
//! - `produce`: the broker ceiling (raw rdkafka producer, the raw topic's records);
//! - `pipe`: the pipe ceiling (raw consume→produce, no transform);
//! - `suite`: all of it, against a fresh Apache Kafka per scenario, with the real service binaries as child
//!   processes, writing target/bench/results.json and target/bench/table.md;
//! - `table`: re-render the table from a results file.

/// The allocator the service binaries use, so that ceilings and transform measure alike.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod benthos;
mod gen;
mod kafka;
mod load;
mod noop;
mod procs;
mod scenarios;
mod suite;
mod table;
mod transform;
mod txn_probe;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "zoomstream-bench",
    version,
    about = "zoomstream benchmarks: load generator, ceilings, suite"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

// The load arguments make one variant large; the enum is parsed once per process.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Cmd {
    /// Signed Zoom webhooks against a URL; prints a JSON report.
    Load(load::LoadArgs),
    /// The HTTP ceiling: an axum no-op webhook handler.
    HttpNoop {
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: SocketAddr,
    },
    /// The broker ceiling: N raw records with a raw rdkafka producer (acks=all, idempotent).
    Produce {
        #[arg(long)]
        brokers: String,
        #[arg(long, default_value = suite::RAW_TOPIC)]
        topic: String,
        #[arg(long, default_value_t = 200_000)]
        records: usize,
        #[arg(long, default_value_t = 12)]
        partitions: i32,
        /// Extra producer settings, key=value.
        #[arg(long = "option", value_parser = parse_kv)]
        options: Vec<(String, String)>,
    },
    /// The acknowledged-producer ceiling: concurrent senders each awaiting its record's
    /// acknowledgement, with ingest's producer settings; prints a JSON load report.
    ProduceAcked {
        #[arg(long)]
        brokers: String,
        #[arg(long, default_value = suite::RAW_TOPIC)]
        topic: String,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        #[arg(long, default_value_t = 6.0)]
        duration: f64,
    },
    /// The pipe ceiling: consume the raw topic, produce every record unchanged; prints JSON.
    Pipe {
        #[arg(long)]
        brokers: String,
        #[arg(long, default_value = suite::RAW_TOPIC)]
        topic: String,
        #[arg(long, default_value = "bench.pipe-out")]
        out_topic: String,
        #[arg(long, default_value = "bench-pipe")]
        group: String,
        /// Records to read before stopping.
        #[arg(long)]
        expect: u64,
        /// Run in Kafka transactions of this many records (with the offsets).
        #[arg(long)]
        transactional: Option<usize>,
    },
    /// The processor's transform alone (Router over generated raw records), in process.
    Transform {
        #[arg(long, default_value = "schemas/sources.toml")]
        sources: PathBuf,
        #[arg(long, default_value_t = 20_000)]
        records: usize,
        #[arg(long, default_value_t = 1)]
        repeat: usize,
    },
    /// Ingest's CPU-only steps per webhook (verify, strict parse, event id, key), in process.
    IngestParts {
        #[arg(long, default_value_t = 20_000)]
        requests: usize,
    },
    /// Prints a digest of the raw event ids of N generated webhooks (to check that a change to
    /// the event-id code keeps every id).
    #[command(hide = true)]
    EventIds {
        #[arg(long, default_value_t = 5000)]
        n: usize,
    },
    /// Times transaction commits (ThreadedProducer as the processor, or a polled BaseProducer).
    TxnProbe {
        #[arg(long)]
        brokers: String,
        #[arg(long, default_value_t = 30)]
        transactions: usize,
        #[arg(long, default_value_t = 1000)]
        per_txn: usize,
        #[arg(long)]
        threaded: bool,
        /// Wait until every record is acknowledged before committing, as the processor does
        /// (rdkafka's commit_transaction() otherwise flushes in 100 ms polling steps).
        #[arg(long)]
        wait_acked: bool,
        /// Extra producer settings, key=value.
        #[arg(long = "option", value_parser = parse_kv)]
        options: Vec<(String, String)>,
    },
    /// Every ceiling and scenario, medians of several runs, the table.
    Suite(suite::SuiteArgs),
    /// Re-render the table from a results file.
    Table {
        #[arg(default_value = "target/bench/results.json")]
        results: PathBuf,
    },
}

pub(crate) fn parse_kv(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected key=value, got {s:?}"))?;
    Ok((k.trim().to_owned(), v.trim().to_owned()))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Load(args) => {
            let report = runtime()?.block_on(load::run(args))?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Cmd::HttpNoop { listen } => runtime()?.block_on(noop::serve(listen))?,
        Cmd::Produce {
            brokers,
            topic,
            records,
            partitions,
            options,
        } => {
            runtime()?.block_on(kafka::create_topic(&brokers, &topic, partitions))?;
            let backlog = gen::backlog(records, 42, suite::SECRET);
            let report = kafka::produce(&brokers, &topic, &backlog, &options)?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Cmd::ProduceAcked {
            brokers,
            topic,
            connections,
            warmup,
            duration,
        } => {
            let rt = runtime()?;
            rt.block_on(kafka::create_topic(&brokers, &topic, 12))?;
            let records = std::sync::Arc::new(gen::backlog(20_000, 7, suite::SECRET));
            let report = rt.block_on(kafka::produce_acked(
                &brokers,
                &topic,
                records,
                connections,
                warmup,
                duration,
            ))?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Cmd::Pipe {
            brokers,
            topic,
            out_topic,
            group,
            expect,
            transactional,
        } => {
            runtime()?.block_on(kafka::create_topic(&brokers, &out_topic, 12))?;
            let report = kafka::pipe(&brokers, &topic, &out_topic, &group, expect, transactional)?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Cmd::Transform {
            sources,
            records,
            repeat,
        } => {
            let report = transform::run(&sources, records, repeat)?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Cmd::IngestParts { requests } => println!(
            "{}",
            serde_json::to_string(&transform::ingest_parts(requests)?)?
        ),
        Cmd::EventIds { n } => {
            let mut g = gen::Generator::new(42);
            let ids: Vec<String> = (0..n)
                .map(|_| {
                    let w = g.next_at(1_700_000_000_000);
                    zoomstream_schemas::raw::event_id(
                        w.app,
                        &serde_json::from_slice(&w.body).expect("JSON"),
                    )
                })
                .collect();
            println!(
                "{} ids, first {}, joined length {}, checksum {:x}",
                ids.len(),
                ids[0],
                ids.concat().len(),
                ids.concat().bytes().fold(0u64, |h, b| h
                    .wrapping_mul(1_099_511_628_211)
                    .wrapping_add(b as u64))
            );
        }
        Cmd::TxnProbe {
            brokers,
            transactions,
            per_txn,
            threaded,
            wait_acked,
            options,
        } => {
            runtime()?.block_on(kafka::create_topic(&brokers, "bench.txn-probe", 6))?;
            println!(
                "{}",
                txn_probe::txn_probe(
                    &brokers,
                    "bench.txn-probe",
                    transactions,
                    per_txn,
                    threaded,
                    wait_acked,
                    &options
                )?
            );
        }
        Cmd::Suite(args) => suite::run(args)?,
        Cmd::Table { results } => print!("{}", suite::table_from(&results)?),
    }
    Ok(())
}
