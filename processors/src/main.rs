use clap::Parser as _;

/// mimalloc: glibc malloc/free were 15–23 % of the services' CPU samples under load (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
