use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = zoomstream_ingest::Config::parse();
    match zoomstream_ingest::run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("zoomstream-ingest: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
