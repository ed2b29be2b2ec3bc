//! The ingest service's configuration: every field a `--flag` and a `ZOOMSTREAM_…` variable.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use zoomstream_runtime::kafka::{parse_setting, KafkaArgs, TopicCreationArgs};
use zoomstream_runtime::listener::ListenerArgs;
use zoomstream_runtime::record_size::DEFAULT_MAX_BODY_BYTES;
use zoomstream_schemas::App;

use crate::secrets::SecretTokens;

/// zoomstream-ingest: receives Zoom webhooks, verifies them, and publishes each verified
/// webhook byte-for-byte to the raw Kafka topic, answering 200 only once Kafka acknowledged it.
#[derive(Clone, Parser)]
#[command(name = "zoomstream-ingest", version)]
pub struct Config {
    /// Address to listen on for webhooks, health and metrics. Port 0 picks a free port.
    #[arg(long, env = "ZOOMSTREAM_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// Connection timeouts and caps of the listener.
    #[command(flatten)]
    pub listener: ListenerArgs,
    /// When set, `/metrics` (and a `/healthz`) are served on this address instead, and the
    /// webhook listener answers 404 for `/metrics`: keeps them off a port Zoom reaches.
    #[arg(long, env = "ZOOMSTREAM_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// The apps file: the Zoom apps this deployment receives webhooks for, each with its name,
    /// kind, path and the variable holding its secret tokens (see README, "Several Zoom apps").
    /// Unset: the built-in `zoom` and `zoom-admin` apps, with the two variables below.
    #[arg(long, env = "ZOOMSTREAM_APPS_FILE")]
    pub apps_file: Option<std::path::PathBuf>,

    /// Secret token of the user-level "Zoom" app (enables POST /webhooks/zoom). During a
    /// rotation, `current,old…`: webhooks signed with any of them are accepted, URL validation
    /// is answered with the current (first) one.
    #[arg(long, env = "ZOOMSTREAM_ZOOM_SECRET_TOKEN", hide_env_values = true, value_parser = SecretTokens::parse)]
    pub zoom_secret_token: Option<SecretTokens>,

    /// Secret token of the account-level "Zoom Admin" app (enables POST /webhooks/zoom-admin);
    /// `current,old…` during a rotation, as for the Zoom app.
    #[arg(long, env = "ZOOMSTREAM_ZOOM_ADMIN_SECRET_TOKEN", hide_env_values = true, value_parser = SecretTokens::parse)]
    pub zoom_admin_secret_token: Option<SecretTokens>,

    /// Kafka topic every verified webhook is written to.
    #[arg(
        long,
        env = "ZOOMSTREAM_RAW_TOPIC",
        default_value = "zoom.webhooks.raw"
    )]
    pub raw_topic: String,

    /// Partitions of the raw topic when ingest creates it; the most processors that can share it.
    #[arg(long, env = "ZOOMSTREAM_RAW_TOPIC_PARTITIONS", default_value_t = 12)]
    pub raw_topic_partitions: i32,

    /// Configs of the raw topic when ingest creates it, as `key=value` (repeatable; in the
    /// environment, comma-separated), over the defaults `retention.ms=-1` (kept for ever: the
    /// system of record that backfill replays) and `max.message.bytes` (from the body limit).
    #[arg(
        long = "raw-topic-config",
        env = "ZOOMSTREAM_RAW_TOPIC_CONFIG",
        value_delimiter = ',',
        value_parser = parse_setting
    )]
    pub raw_topic_configs: Vec<(String, String)>,

    /// Whether ingest creates the raw topic, and its replication.
    #[command(flatten)]
    pub topic_creation: TopicCreationArgs,

    /// Accepted distance between x-zm-request-timestamp and now, in seconds (replay window).
    #[arg(long, env = "ZOOMSTREAM_REPLAY_WINDOW_SECS", default_value_t = 300)]
    pub replay_window_secs: u64,

    /// Largest accepted request body, in bytes; larger bodies get 413. Also sizes the producer's
    /// `message.max.bytes` and the raw topic's `max.message.bytes` (body + 64 KiB for headers and
    /// framing); an existing raw topic that cannot store such records stops ingest at start.
    /// The processors read the same variable.
    #[arg(long, env = "ZOOMSTREAM_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// How long a webhook may wait for Kafka's acknowledgement before ingest answers 503.
    /// Zoom gives up after 3 s, so this stays well below that.
    #[arg(long, env = "ZOOMSTREAM_PUBLISH_TIMEOUT_MS", default_value_t = 2000)]
    pub publish_timeout_ms: u64,

    /// Bytes all request bodies being received or handled may take together; a body that would
    /// go over gets 503 (Zoom retries). Charged as bytes arrive, so slow clients hold little.
    #[arg(
        long,
        env = "ZOOMSTREAM_MAX_BODY_BYTES_IN_FLIGHT",
        default_value_t = 256 * 1024 * 1024
    )]
    pub max_body_bytes_in_flight: usize,

    /// How long a client may take to send its body before ingest answers 408.
    #[arg(long, env = "ZOOMSTREAM_BODY_TIMEOUT_MS", default_value_t = 5000)]
    pub body_timeout_ms: u64,

    /// Webhooks being handled at once above which ingest sheds load with 503.
    #[arg(long, env = "ZOOMSTREAM_MAX_IN_FLIGHT", default_value_t = 4096)]
    pub max_in_flight: usize,

    /// A folder for the disk spool (opt-in): webhooks Kafka cannot acknowledge within the
    /// publish budget are stored there, fsynced, answered 200, and published once Kafka is
    /// back (also after a restart). Unset: such webhooks get 503 and Zoom retries them.
    #[arg(long, env = "ZOOMSTREAM_SPOOL_DIR")]
    pub spool_dir: Option<std::path::PathBuf>,

    /// Most bytes the spool holds; when full, webhooks Kafka cannot take get 503 again.
    #[arg(long, env = "ZOOMSTREAM_SPOOL_MAX_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub spool_max_bytes: u64,

    /// Whether ingest checks the raw topic's `max.message.bytes` at start. Not a flag: off
    /// only in `zoomstream dev`, whose mock cluster keeps no topic configs.
    #[arg(skip = true)]
    pub check_raw_topic: bool,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets show only whether they are set.
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("listener", &self.listener)
            .field("metrics_listen", &self.metrics_listen)
            .field("kafka", &self.kafka)
            .field("apps_file", &self.apps_file)
            .field(
                "zoom_secret_token",
                &self.zoom_secret_token.as_ref().map(|_| "<set>"),
            )
            .field(
                "zoom_admin_secret_token",
                &self.zoom_admin_secret_token.as_ref().map(|_| "<set>"),
            )
            .field("raw_topic", &self.raw_topic)
            .field("raw_topic_partitions", &self.raw_topic_partitions)
            .field("raw_topic_configs", &self.raw_topic_configs)
            .field("topic_creation", &self.topic_creation)
            .field("replay_window_secs", &self.replay_window_secs)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_body_bytes_in_flight", &self.max_body_bytes_in_flight)
            .field("publish_timeout_ms", &self.publish_timeout_ms)
            .field("body_timeout_ms", &self.body_timeout_ms)
            .field("max_in_flight", &self.max_in_flight)
            .field("check_raw_topic", &self.check_raw_topic)
            .field("spool_dir", &self.spool_dir)
            .field("spool_max_bytes", &self.spool_max_bytes)
            .finish()
    }
}

/// Configuration that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no Zoom secret token configured: set ZOOMSTREAM_ZOOM_SECRET_TOKEN (Zoom app) and/or \
         ZOOMSTREAM_ZOOM_ADMIN_SECRET_TOKEN (Zoom Admin app), found in the app's Feature page \
         on the Zoom Marketplace"
    )]
    NoSecret,
    #[error("{0} must be greater than zero")]
    NotPositive(&'static str),
    #[error(
        "max_body_bytes_in_flight must be at least max_body_bytes, or the largest body never fits"
    )]
    BodyBudgetBelowBody,
    #[error(transparent)]
    Listener(#[from] zoomstream_runtime::listener::args::ListenerArgsError),
}

impl Config {
    /// A config for tests and embedding: listen on a free loopback port, defaults elsewhere.
    /// Reads no flag and no environment variable (the binary's `Config::parse` does).
    pub fn new(brokers: impl Into<String>) -> Self {
        let mut config: Config = zoomstream_runtime::config::defaults();
        config.listen = ([127, 0, 0, 1], 0).into();
        config.kafka.brokers = brokers.into();
        config
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        // With an apps file, each app's variable is required instead (crate::apps).
        let no_builtin_secret =
            self.zoom_secret_token.is_none() && self.zoom_admin_secret_token.is_none();
        if self.apps_file.is_none() && no_builtin_secret {
            return Err(ConfigError::NoSecret);
        }
        if self.raw_topic_partitions <= 0 {
            return Err(ConfigError::NotPositive("raw_topic_partitions"));
        }
        if self.publish_timeout_ms == 0 {
            return Err(ConfigError::NotPositive("publish_timeout_ms"));
        }
        if self.max_body_bytes == 0 {
            return Err(ConfigError::NotPositive("max_body_bytes"));
        }
        if self.max_in_flight == 0 {
            return Err(ConfigError::NotPositive("max_in_flight"));
        }
        if self.max_body_bytes_in_flight < self.max_body_bytes {
            return Err(ConfigError::BodyBudgetBelowBody);
        }
        self.listener.validate()?;
        Ok(())
    }

    /// The secret tokens of a built-in app (no apps file).
    pub fn secret(&self, app: App) -> Option<&SecretTokens> {
        if app == App::ZOOM {
            self.zoom_secret_token.as_ref()
        } else if app == App::ZOOM_ADMIN {
            self.zoom_admin_secret_token.as_ref()
        } else {
            None
        }
    }

    pub fn publish_timeout(&self) -> Duration {
        Duration::from_millis(self.publish_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_new_reads_no_environment() {
        // Settings the binary reads from the environment; no other test here reads them.
        std::env::set_var("ZOOMSTREAM_MAX_IN_FLIGHT", "7");
        std::env::set_var("ZOOMSTREAM_KAFKA_OPTIONS", "sasl.password=from-env");
        let from_env = Config::parse_from(["zoomstream-ingest"]);
        let embedded = Config::new("b:1");
        std::env::remove_var("ZOOMSTREAM_MAX_IN_FLIGHT");
        std::env::remove_var("ZOOMSTREAM_KAFKA_OPTIONS");
        assert_eq!(from_env.max_in_flight, 7, "the binary reads the variables");
        assert_eq!(from_env.kafka.options.len(), 1);
        assert_eq!(embedded.max_in_flight, 4096);
        assert!(embedded.kafka.options.is_empty());
        assert_eq!(embedded.kafka.brokers, "b:1");
        assert_eq!(embedded.listen, SocketAddr::from(([127, 0, 0, 1], 0)));
    }
}
