//! The test kit of the end-to-end tests (and the benchmarks): modules by concern, all
//! re-exported so a test reads `use zoomstream_tests::*`.
//!
//! The shared broker comes from `ZOOMSTREAM_KAFKA_BROKERS`, which `scripts/test` sets after
//! starting Apache Kafka; tests that take brokers away start clusters of their own
//! ([`broker::KafkaCluster`]).

pub mod apps;
pub mod broker;
pub mod downstream;
pub mod figures;
pub mod names;
pub mod pipeline_audit;
pub mod probes;
pub mod processes;
pub mod records;
pub mod sources;
pub mod sse_client;
pub mod wait;
pub mod webhook_load;
pub mod zoom;

pub use apps::*;
pub use broker::*;
pub use downstream::*;
pub use names::*;
pub use pipeline_audit::*;
pub use probes::*;
pub use processes::*;
pub use records::*;
pub use sources::*;
pub use sse_client::*;
pub use wait::*;
pub use webhook_load::*;
pub use zoom::*;
