//! The life of a service process, written once for every zoomstream binary: JSON logs, signals
//! listened for before anything else, the config logged (its `Debug` redacts secrets), the
//! service built, its address logged, then served until SIGTERM or ctrl-c.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;

use crate::shutdown::{self, ShutdownToken};
use crate::telemetry;

/// A service a binary runs: built from its config, then served until its token is cancelled.
pub trait Service: Sized {
    /// The binary's name, as logs and errors call it (`zoomstream-ingest`).
    const NAME: &'static str;

    /// Its configuration: flags and `ZOOMSTREAM_…` variables. `Debug` must hide secrets.
    type Config: clap::Parser + fmt::Debug + Send;

    /// Binds the listener and connects what the service needs; nothing is served yet.
    fn build(config: Self::Config) -> impl Future<Output = anyhow::Result<Self>> + Send;

    /// Where its HTTP endpoint listens (port 0 resolved).
    fn local_addr(&self) -> SocketAddr;

    /// Serves until `shutdown` is cancelled, then stops cleanly.
    fn run_until(self, shutdown: ShutdownToken) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// The service as a process runs it.
pub async fn run<S: Service>(config: S::Config) -> anyhow::Result<()> {
    telemetry::init_logging();
    // Listen for signals first: a SIGTERM during start-up then stops the service cleanly.
    let shutdown = shutdown::on_signal();
    tracing::info!(config = ?config, "starting {}", S::NAME);
    let service = S::build(config).await?;
    tracing::info!(addr = %service.local_addr(), "{} listening", S::NAME);
    service.run_until(shutdown).await
}

/// A binary's `main`: the config from flags and the environment, [`run`], and the exit code
/// (failure with the error on stderr).
pub async fn main<S: Service>() -> ExitCode {
    let config = <S::Config as clap::Parser>::parse();
    match run::<S>(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{}: {err:#}", S::NAME);
            ExitCode::FAILURE
        }
    }
}
