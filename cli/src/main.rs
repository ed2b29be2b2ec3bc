use std::process::ExitCode;

use clap::Parser as _;

/// mimalloc: glibc malloc/free were 15–23 % of the services' CPU samples under load (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = zoomstream_cli::Cli::parse();
    match zoomstream_cli::run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("zoomstream: {err:#}");
            ExitCode::FAILURE
        }
    }
}
