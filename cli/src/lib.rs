//! The `zoomstream` command, for trying and operating the pipeline by hand:
//!
//! - [`dev`]: ingest and a processor in one process, on librdkafka's in-process mock cluster;
//! - [`send`]: webhook fixtures signed and posted exactly as Zoom delivers them;
//! - [`tail`]: a topic's records printed as JSON lines, source topics decoded from Avro;
//! - [`sources`]: the sources file validated or listed, as a processor reads it;
//! - [`backfill`]: one source filled from the raw topic's history, with progress.

pub mod backfill;
pub mod dev;
pub mod send;
pub mod sources;
pub mod tail;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// zoomstream: Zoom webhooks in, one Kafka topic per source out.
///
/// Try the whole pipeline without Docker or Kafka: `zoomstream dev` in one terminal,
/// `zoomstream send --all tests/fixtures/zoom` and
/// `zoomstream tail zoom.recording-completed --brokers <address dev printed> --from-beginning`
/// in another (from the repository root).
#[derive(Parser)]
#[command(name = "zoomstream", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run ingest and a processor in this process, on an in-process Kafka (no Docker, no Kafka).
    ///
    /// Starts librdkafka's mock cluster, creates the raw topic, the dead-letter topic and every
    /// source topic of the sources file on it, then serves webhooks signed with development
    /// secrets. Prints the webhook URLs, the secrets, the Kafka bootstrap address (any Kafka
    /// client can read the topics there) and the topics. Nothing is kept after exit; stops on
    /// ctrl-c or SIGTERM.
    Dev(dev::DevArgs),
    /// Sign webhook bodies exactly as Zoom does and POST them to ingest.
    ///
    /// Each file is sent byte for byte with the current time as x-zm-request-timestamp and Zoom's
    /// headers. Prints the status and body of each answer; exits non-zero if any answer is not
    /// 200.
    Send(send::SendArgs),
    /// Print a topic's records as JSON lines.
    ///
    /// Each line holds the record's partition, offset, timestamp, key, headers and value. The
    /// value of a source topic is decoded from Avro (either framing) with the schema the sources
    /// file gives that topic; any other topic's (the raw topic, the dead-letter topic) is text,
    /// embedded as JSON when it is JSON. Starts at the end unless told `--from-beginning`,
    /// `--offset` or `--since`.
    Tail(tail::TailArgs),
    /// Serve every source as a private Server-Sent Events stream (the zoomstream-sse service).
    Sse(zoomstream_sse::Config),
    /// Check or show the sources file (`validate [FILE]`, `list`) without starting a processor.
    Sources(sources::SourcesArgs),
    /// Fill one source's topic from the raw topic's history, then exit.
    ///
    /// Runs a processor in backfill mode in this process (under the group
    /// `<group>.backfill.<source>`; it writes that source's topic only) and prints progress
    /// every few seconds: offsets read of the raw topic's end offsets, per partition. A second
    /// run for a source whose backfill finished is refused unless `--reset` is given. Takes the
    /// processor's flags and `ZOOMSTREAM_…` variables.
    Backfill(backfill::BackfillArgs),
}

/// Runs a subcommand; the exit code says whether it fully succeeded.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Dev(args) => {
            init_logging("info,rdkafka=warn,librdkafka=warn");
            dev::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Send(args) => {
            init_logging("warn");
            let all_ok = send::run(args).await?;
            Ok(if all_ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Tail(args) => {
            init_logging("warn");
            tail::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sources(args) => {
            init_logging("warn");
            Ok(if sources::run(args)? {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Backfill(args) => {
            init_logging("warn");
            backfill::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        // The service logs JSON lines as it does on its own.
        Command::Sse(config) => {
            zoomstream_runtime::service::run::<zoomstream_sse::Sse>(config).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Human-readable logs on stderr, filtered by `RUST_LOG`. The services log JSON lines on stdout
/// when they run on their own; here stdout belongs to the command's output (the dev banner,
/// tailed records), and the first subscriber installed wins, so the services' own
/// `init_logging` does not replace this one.
fn init_logging(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .with_target(false)
        .compact()
        .try_init();
}
