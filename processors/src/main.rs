use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = zoomstream_processors::Config::parse();
    match zoomstream_processors::run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("zoomstream-processor: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
