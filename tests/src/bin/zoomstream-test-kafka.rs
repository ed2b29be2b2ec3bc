//! Starts the test suite's shared Apache Kafka (one KRaft node, or three with `--nodes 3`) on
//! free loopback ports, writes its bootstrap address to the file named by `--bootstrap-file`,
//! and runs until SIGTERM or ctrl-c, then stops every node. `scripts/test` runs it.

use std::path::PathBuf;

use zoomstream_tests::broker::{clusters_dir, KafkaCluster};
use zoomstream_tests::names::unique;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut nodes = 1;
    let mut bootstrap_file: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--nodes" => nodes = args.next().unwrap_or_default().parse()?,
            "--bootstrap-file" => bootstrap_file = args.next().map(PathBuf::from),
            other => anyhow::bail!(
                "unknown argument {other:?}; usage: zoomstream-test-kafka [--nodes 1|3] --bootstrap-file PATH"
            ),
        }
    }
    let bootstrap_file =
        bootstrap_file.ok_or_else(|| anyhow::anyhow!("--bootstrap-file is required"))?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let cluster = tokio::task::spawn_blocking(move || {
        KafkaCluster::start_in(nodes, clusters_dir().join(unique("shared")))
    })
    .await?;
    std::fs::write(&bootstrap_file, cluster.bootstrap())?;
    eprintln!(
        "zoomstream-test-kafka: {} node(s) on {} (logs in {})",
        nodes,
        cluster.bootstrap(),
        cluster.dir().display()
    );
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    drop(cluster);
    Ok(())
}
