use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = zoomstream_sse::Config::parse();
    match zoomstream_sse::run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("zoomstream-sse: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
