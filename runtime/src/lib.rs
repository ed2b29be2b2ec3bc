//! What zoomstream's services share at run time, and nothing else: how a service process starts
//! and stops ([`service`]), how an embedded config is built ([`config`]), how they talk to Kafka
//! ([`kafka`]), how large a record may be ([`record_size`]) and what configs created topics get
//! ([`topic_configs`]), how they log ([`telemetry`]), how they serve HTTP ([`listener`]), how they
//! expose health and metrics ([`endpoints`], [`metrics`]), the Schema Registry
//! ([`schema_registry`]) and how they stop
//! ([`shutdown`]).

pub mod config;
pub mod endpoints;
pub mod kafka;
pub mod kafka_properties;
pub mod listener;
pub mod metrics;
pub mod record_size;
pub mod schema_registry;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod topic_configs;
