//! Apache Kafka brokers for the tests: the shared one every test talks to (started by
//! `scripts/test` through the `zoomstream-test-kafka` binary, or an existing cluster named by
//! `ZOOMSTREAM_KAFKA_BROKERS`), and clusters of a test's own — one node or three KRaft nodes —
//! for tests that stop, kill or restart brokers.
//!
//! Kafka comes from `scripts/install-kafka` (Maven Central); `ZOOMSTREAM_KAFKA_HOME` names the
//! folder whose `libs/*` is the broker's classpath.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use zoomstream_runtime::kafka::{ensure_topics, KafkaArgs, TopicSpec};
use zoomstream_runtime::record_size::{
    max_output_record_bytes, topic_config, DEFAULT_MAX_BODY_BYTES,
};

use crate::names::unique;

/// The broker every test talks to.
pub fn brokers() -> String {
    std::env::var("ZOOMSTREAM_KAFKA_BROKERS").expect(
        "ZOOMSTREAM_KAFKA_BROKERS is not set: run the tests with scripts/test, which starts Kafka",
    )
}

/// Creates a topic with one replica (on the shared broker or a one-node cluster), storing
/// records as large as the services' default body limit needs (as they would create it).
pub async fn create_topic(brokers: &str, name: &str, partitions: i32) {
    create_replicated_topic(brokers, name, partitions, 1).await;
}

pub async fn create_replicated_topic(
    brokers: &str,
    name: &str,
    partitions: i32,
    replication_factor: i32,
) {
    ensure_topics(
        &KafkaArgs::new(brokers),
        &[TopicSpec {
            name: name.to_owned(),
            partitions,
            replication_factor,
            configs: vec![topic_config(max_output_record_bytes(
                DEFAULT_MAX_BODY_BYTES,
            ))],
        }],
    )
    .await
    .expect("creating a test topic");
}

/// A topic's configs as the broker reports them (defaults included). Right after a topic is
/// created the broker may answer with no entries yet; asked again until it has them.
pub async fn topic_configs(
    brokers: &str,
    topic: &str,
) -> std::collections::HashMap<String, String> {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let results = admin
            .describe_configs([&ResourceSpecifier::Topic(topic)], &AdminOptions::new())
            .await
            .expect("describing the topic's configs");
        let found: std::collections::HashMap<String, String> = results
            .into_iter()
            .next()
            .and_then(Result::ok)
            .map(|resource| {
                resource
                    .entries
                    .into_iter()
                    .filter_map(|e| Some((e.name, e.value?)))
                    .collect()
            })
            .unwrap_or_default();
        if !found.is_empty() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{topic} has no configs after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A free TCP port on loopback (for brokers and services the test starts itself).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `n` distinct free ports: the listeners are held until all are bound, so no two are the same
/// (two `free_port()` calls in a row can return one port twice, and Kafka refuses a node whose
/// broker and controller listeners share it).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// The installed Kafka: `ZOOMSTREAM_KAFKA_HOME` (set by scripts/test from scripts/install-kafka).
fn kafka_home() -> PathBuf {
    std::env::var_os("ZOOMSTREAM_KAFKA_HOME")
        .map(PathBuf::from)
        .expect("ZOOMSTREAM_KAFKA_HOME is not set: run the tests with scripts/test")
}

/// The workspace's `target/` folder (as a plain path: scripts/test matches it in command lines).
pub fn workspace_target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is in the workspace")
        .join("target")
}

/// Where test clusters keep their data and logs: under the workspace's `target/`, so
/// `scripts/test` can find (and stop) any a crashed test left behind.
pub fn clusters_dir() -> PathBuf {
    workspace_target().join("kafka-test")
}

/// One KRaft node (broker and controller in one JVM).
pub struct KafkaNode {
    pub id: u32,
    pub port: u16,
    controller_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl KafkaNode {
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("broker.log")
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

/// A Kafka cluster of the test's own: one node, or three nodes on loopback that share one
/// controller quorum (replication factor 3, `min.insync.replicas=2`). Every node is stopped
/// when the cluster is dropped.
pub struct KafkaCluster {
    nodes: Vec<KafkaNode>,
    dir: PathBuf,
}

impl KafkaCluster {
    /// A one-node cluster, for tests that stop, kill or restart the broker.
    pub fn single() -> KafkaCluster {
        KafkaCluster::start(1)
    }

    /// A three-node cluster, for tests that take one broker away while the others carry on.
    pub fn three_nodes() -> KafkaCluster {
        KafkaCluster::start(3)
    }

    /// Formats and starts `size` nodes (1 or 3) in a fresh folder under [`clusters_dir`], and
    /// waits until every node serves metadata with all brokers registered.
    pub fn start(size: u32) -> KafkaCluster {
        KafkaCluster::start_in(size, clusters_dir().join(unique("cluster")))
    }

    pub fn start_in(size: u32, dir: PathBuf) -> KafkaCluster {
        assert!(size == 1 || size == 3, "a test cluster has 1 or 3 nodes");
        std::fs::create_dir_all(&dir).expect("creating the cluster's folder");
        let ports = free_ports(2 * size as usize);
        let nodes: Vec<KafkaNode> = (1..=size)
            .map(|id| KafkaNode {
                id,
                port: ports[2 * (id as usize - 1)],
                controller_port: ports[2 * (id as usize - 1) + 1],
                dir: dir.join(format!("node-{id}")),
                child: None,
            })
            .collect();
        let voters = nodes
            .iter()
            .map(|n| format!("{}@127.0.0.1:{}", n.id, n.controller_port))
            .collect::<Vec<_>>()
            .join(",");
        // The tool's log goes to stdout too; the id is its last line.
        let out = storage_tool(&["random-uuid"]);
        let cluster_id = out
            .lines()
            .last()
            .expect("StorageTool printed an id")
            .trim();
        for node in &nodes {
            std::fs::create_dir_all(&node.dir).unwrap();
            std::fs::write(
                node.dir.join("server.properties"),
                server_properties(node, &voters, size),
            )
            .unwrap();
            let props = node.dir.join("server.properties");
            storage_tool(&[
                "format",
                "--ignore-formatted",
                "-t",
                cluster_id,
                "-c",
                props.to_str().unwrap(),
            ]);
        }
        let mut cluster = KafkaCluster { nodes, dir };
        for id in 1..=size {
            cluster.spawn_node(id);
        }
        cluster.wait_healthy();
        cluster
    }

    /// Every node's address, comma-separated (a client's bootstrap servers).
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(KafkaNode::address)
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn node(&self, id: u32) -> &KafkaNode {
        &self.nodes[(id - 1) as usize]
    }

    pub fn nodes(&self) -> &[KafkaNode] {
        &self.nodes
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Sends `signal` (`STOP`, `CONT`, `KILL`, `TERM`) to node `id`.
    pub fn signal(&self, id: u32, signal: &str) {
        let pid = self.node(id).pid().expect("the node runs");
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} {pid} failed");
    }

    /// SIGKILLs node `id` (no controlled shutdown) and reaps it.
    pub fn kill(&mut self, id: u32) {
        let node = &mut self.nodes[(id - 1) as usize];
        if let Some(mut child) = node.child.take() {
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops node `id` with SIGTERM (a controlled shutdown: leadership moves first).
    pub fn stop(&mut self, id: u32) {
        let node = &mut self.nodes[(id - 1) as usize];
        if let Some(mut child) = node.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if child.try_wait().expect("waiting for a broker").is_some() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Starts node `id` again on its ports and data, and waits until the cluster is whole.
    pub fn restart(&mut self, id: u32) {
        assert!(!self.node(id).is_running(), "node {id} still runs");
        self.spawn_node(id);
        self.wait_healthy();
    }

    /// The node that leads `partition` of `topic`, from the metadata of any running node.
    pub fn leader_of(&self, topic: &str, partition: i32) -> u32 {
        let metadata = self
            .metadata_consumer()
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
        let topic = &metadata.topics()[0];
        let leader = topic
            .partitions()
            .iter()
            .find(|p| p.id() == partition)
            .expect("the partition exists")
            .leader();
        u32::try_from(leader).expect("the partition has a leader")
    }

    fn running_bootstrap(&self) -> String {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .map(KafkaNode::address)
            .collect::<Vec<_>>()
            .join(",")
    }

    fn metadata_consumer(&self) -> BaseConsumer {
        ClientConfig::new()
            .set("bootstrap.servers", self.running_bootstrap())
            .create()
            .expect("metadata client")
    }

    fn spawn_node(&mut self, id: u32) {
        let home = kafka_home();
        let node = &mut self.nodes[(id - 1) as usize];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.log_path())
            .expect("opening the broker log");
        let child = Command::new("java")
            .args(jvm_options())
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                home.join("log4j2.properties").display()
            ))
            .arg("-cp")
            .arg(home.join("libs/*"))
            .arg("kafka.Kafka")
            .arg(node.dir.join("server.properties"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting Kafka (java)");
        node.child = Some(child);
    }

    /// Waits until every running node accepts connections and the metadata lists every
    /// running broker (so topics created next get all their replicas).
    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        for node in self.nodes.iter_mut().filter(|n| n.child.is_some()) {
            while TcpStream::connect(("127.0.0.1", node.port)).is_err() {
                if let Some(status) = node.child.as_mut().unwrap().try_wait().unwrap() {
                    panic!(
                        "Kafka node {} exited ({status}) during start-up; its log:\n{}",
                        node.id,
                        std::fs::read_to_string(node.log_path()).unwrap_or_default()
                    );
                }
                assert!(
                    Instant::now() < deadline,
                    "Kafka node {} did not listen within 120 s (log: {})",
                    node.id,
                    node.log_path().display()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let running = self.nodes.iter().filter(|n| n.is_running()).count();
        let consumer = self.metadata_consumer();
        loop {
            let brokers = consumer
                .fetch_metadata(None, Duration::from_secs(5))
                .map(|m| m.brokers().len())
                .unwrap_or(0);
            if brokers == running {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster in {} did not register {running} brokers within 120 s",
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        for id in 1..=self.nodes.len() as u32 {
            self.kill(id);
        }
        // Data of a passed run is not needed; a failed one keeps its logs for reading.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// JVM flags for a test broker: a small heap and a collector that suits 2 cores.
fn jvm_options() -> Vec<String> {
    let heap = std::env::var("ZOOMSTREAM_KAFKA_HEAP").unwrap_or_else(|_| "512m".into());
    vec![
        format!("-Xmx{heap}"),
        "-Xms128m".into(),
        "-XX:+UseSerialGC".into(),
        "-Djava.awt.headless=true".into(),
    ]
}

fn server_properties(node: &KafkaNode, voters: &str, size: u32) -> String {
    let replicas = size.min(3);
    let min_isr = if size >= 3 { 2 } else { 1 };
    format!(
        "process.roles=broker,controller
node.id={id}
controller.quorum.voters={voters}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data}
# Internal topics sized for the cluster; few partitions so a node starts fast.
offsets.topic.replication.factor={replicas}
offsets.topic.num.partitions=6
transaction.state.log.replication.factor={replicas}
transaction.state.log.min.isr={min_isr}
transaction.state.log.num.partitions=6
share.coordinator.state.topic.replication.factor={replicas}
share.coordinator.state.topic.min.isr={min_isr}
default.replication.factor={replicas}
min.insync.replicas={min_isr}
# Tests join groups often; waiting for more members only slows them.
group.initial.rebalance.delay.ms=0
# A SIGKILLed node's partitions move within seconds.
broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1000
# Transactions a killed processor left open are aborted within a test's patience.
transaction.abort.timed.out.transaction.cleanup.interval.ms=2000
unclean.leader.election.enable=false
",
        id = node.id,
        port = node.port,
        cport = node.controller_port,
        data = node.dir.join("data").display(),
    )
}

/// Runs Kafka's storage tool (KRaft formatting, cluster ids) and returns its stdout.
fn storage_tool(args: &[&str]) -> String {
    let home = kafka_home();
    let out = Command::new("java")
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            home.join("log4j2.properties").display()
        ))
        .arg("-cp")
        .arg(home.join("libs/*"))
        .arg("kafka.tools.StorageTool")
        .args(args)
        .output()
        .expect("running Kafka's StorageTool (java)");
    assert!(
        out.status.success(),
        "StorageTool {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
