//! `zoomstream-ingest`: the ingest service as a process.

/// mimalloc: glibc malloc/free were 15–23 % of the services' CPU samples under load (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    zoomstream_runtime::service::main::<zoomstream_ingest::Ingest>().await
}
