use std::process::ExitCode;

use clap::Parser as _;

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
