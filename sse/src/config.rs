//! The SSE service's configuration: every field a `--flag` and a `ZOOMSTREAM_…` variable.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use secrecy::{ExposeSecret as _, SecretString};
use zoomstream_runtime::kafka::KafkaArgs;
use zoomstream_runtime::listener::ListenerArgs;
use zoomstream_runtime::schema_registry::RegistryArgs;

/// zoomstream-sse: each source of the sources file as a private, resumable Server-Sent Events
/// stream (`GET /sources/{name}/events`), read from its Kafka topic. Event ids are Kafka
/// offsets, so a client reconnecting with Last-Event-ID continues exactly where it stopped,
/// across restarts of this service too.
#[derive(Clone, Parser)]
#[command(name = "zoomstream-sse", version)]
pub struct Config {
    /// Address to listen on for streams, health and metrics. Port 0 picks a free port.
    #[arg(long, env = "ZOOMSTREAM_SSE_LISTEN", default_value = "0.0.0.0:8090")]
    pub listen: SocketAddr,

    /// Connection timeouts and caps of the listener (the idle timeout must exceed the
    /// keep-alive interval, which keeps a quiet stream's connection busy).
    #[command(flatten)]
    pub listener: ListenerArgs,

    /// The sources file: which sources exist, their topics and schemas.
    #[arg(
        long,
        env = "ZOOMSTREAM_SOURCES",
        default_value = "schemas/sources.toml"
    )]
    pub sources: PathBuf,

    /// The apps file (as ingest's and the processors'), naming the apps sources may take.
    /// Unset: the built-in `zoom` and `zoom-admin` apps.
    #[arg(long, env = "ZOOMSTREAM_APPS_FILE")]
    pub apps_file: Option<PathBuf>,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// The Schema Registry, to decode sources written in Confluent framing with the schema
    /// that wrote each record (single-object records need none: their writer is found in the
    /// schema's history by fingerprint).
    #[command(flatten)]
    pub registry: RegistryArgs,

    /// Bearer token that opens every source without a token of its own.
    #[arg(long, env = "ZOOMSTREAM_SSE_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    pub token: Option<SecretString>,

    /// Token of one source, as `name=token` (repeatable; in the environment, comma-separated).
    /// A source with its own tokens is no longer opened by the global token.
    // Kept whole and split later: clap would echo a value it refuses, token included.
    #[arg(
        long = "source-token",
        env = "ZOOMSTREAM_SSE_SOURCE_TOKENS",
        value_delimiter = ',',
        value_parser = keep_secret,
        hide_env_values = true
    )]
    pub source_tokens: Vec<SecretString>,

    /// A TOML file of tokens: `[sse]` with an optional global `token`, and a `[sse.tokens]`
    /// table of `source-name = "token"` (or a list, for rotation). Added to the other settings.
    #[arg(long, env = "ZOOMSTREAM_SSE_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,

    /// Interval of keep-alive comments on an idle stream, in milliseconds.
    #[arg(long, env = "ZOOMSTREAM_SSE_KEEP_ALIVE_MS", default_value_t = 15_000)]
    pub keep_alive_ms: u64,

    /// Reconnection delay suggested to clients (the SSE `retry:` field), in milliseconds.
    #[arg(long, env = "ZOOMSTREAM_SSE_RETRY_MS", default_value_t = 3_000)]
    pub retry_ms: u64,

    /// Events one client may have waiting (sent by Kafka, not yet taken by its connection).
    /// A client further behind than this at the live edge is disconnected as slow; it resumes
    /// with its last id.
    #[arg(long, env = "ZOOMSTREAM_SSE_CLIENT_BUFFER", default_value_t = 256)]
    pub client_buffer: usize,

    /// How long a client may take nothing while its buffer is full (catching up), or leave its
    /// final "disconnected" event unread, before its connection is cut; in milliseconds.
    #[arg(
        long,
        env = "ZOOMSTREAM_SSE_SLOW_CLIENT_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub slow_client_timeout_ms: u64,

    /// Events kept per source for the clients at the live edge (the fan-out ring). A client that
    /// falls further behind than this (a stalled server, not a slow client) catches up from
    /// Kafka instead.
    #[arg(long, env = "ZOOMSTREAM_SSE_LIVE_BUFFER", default_value_t = 1024)]
    pub live_buffer: usize,

    /// Most clients reading older records from Kafka at once (each with a consumer of its own);
    /// more wait their turn, with keep-alives.
    #[arg(long, env = "ZOOMSTREAM_SSE_MAX_CATCHUPS", default_value_t = 32)]
    pub max_catchups: usize,

    /// Most connected clients over all sources; beyond, new ones get 503.
    #[arg(long, env = "ZOOMSTREAM_SSE_MAX_CLIENTS", default_value_t = 10_000)]
    pub max_clients: usize,

    /// Most streams open with one token (over all its sources); beyond, 429.
    #[arg(
        long,
        env = "ZOOMSTREAM_SSE_MAX_CLIENTS_PER_TOKEN",
        default_value_t = 1_000
    )]
    pub max_clients_per_token: usize,

    /// Most streams open from one client address; beyond, 429. Behind a proxy every client
    /// has its address: raise it to `max_clients` there.
    #[arg(
        long,
        env = "ZOOMSTREAM_SSE_MAX_CLIENTS_PER_ADDRESS",
        default_value_t = 1_000
    )]
    pub max_clients_per_address: usize,

    /// How long a source's live consumer stays after its last client left, in milliseconds.
    #[arg(
        long,
        env = "ZOOMSTREAM_SSE_CONSUMER_IDLE_MS",
        default_value_t = 60_000
    )]
    pub consumer_idle_ms: u64,

    /// Browser origins allowed to read streams cross-origin (comma-separated; `*` for any).
    #[arg(
        long = "cors-origin",
        env = "ZOOMSTREAM_SSE_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,

    /// On SIGTERM, how long clients get to receive their final event before connections are
    /// cut, in milliseconds.
    #[arg(
        long,
        env = "ZOOMSTREAM_SSE_SHUTDOWN_GRACE_MS",
        default_value_t = 5_000
    )]
    pub shutdown_grace_ms: u64,
}

fn parse_secret(s: &str) -> Result<SecretString, String> {
    if s.trim().is_empty() {
        return Err("the token is empty".into());
    }
    Ok(SecretString::from(s.to_owned()))
}

fn keep_secret(s: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(s.to_owned()))
}

/// The source name of a `name=token` setting, if it has one.
fn source_token_name(setting: &SecretString) -> Option<&str> {
    setting
        .expose_secret()
        .split_once('=')
        .map(|(name, _)| name.trim())
        .filter(|name| !name.is_empty())
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Tokens show only whether they are set, per-source ones only their source names.
        let source_tokens: Vec<&str> = self
            .source_tokens
            .iter()
            .map(|t| source_token_name(t).unwrap_or("<malformed>"))
            .collect();
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("listener", &self.listener)
            .field("sources", &self.sources)
            .field("apps_file", &self.apps_file)
            .field("kafka", &self.kafka)
            .field("registry", &self.registry)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("source_tokens", &source_tokens)
            .field("tokens_file", &self.tokens_file)
            .field("keep_alive_ms", &self.keep_alive_ms)
            .field("retry_ms", &self.retry_ms)
            .field("client_buffer", &self.client_buffer)
            .field("slow_client_timeout_ms", &self.slow_client_timeout_ms)
            .field("live_buffer", &self.live_buffer)
            .field("max_catchups", &self.max_catchups)
            .field("max_clients", &self.max_clients)
            .field("max_clients_per_token", &self.max_clients_per_token)
            .field("max_clients_per_address", &self.max_clients_per_address)
            .field("consumer_idle_ms", &self.consumer_idle_ms)
            .field("cors_origins", &self.cors_origins)
            .field("shutdown_grace_ms", &self.shutdown_grace_ms)
            .finish()
    }
}

/// Configuration that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} must be greater than zero")]
    NotPositive(&'static str),
    #[error(transparent)]
    Listener(#[from] zoomstream_runtime::listener::args::ListenerArgsError),
    #[error("idle_timeout_ms ({idle}) must exceed keep_alive_ms ({keep_alive}), or quiet streams are cut")]
    IdleBelowKeepAlive { idle: u64, keep_alive: u64 },
    // Never echo the setting: it holds the token.
    #[error("ZOOMSTREAM_SSE_SOURCE_TOKENS / --source-token: entry {0} is not source-name=token with both parts set")]
    MalformedSourceToken(usize),
}

impl Config {
    /// A config for tests and embedding: a free loopback port, defaults elsewhere (a token must
    /// still be set). Reads no flag and no environment variable (the binary's `Config::parse`
    /// does).
    pub fn new(brokers: impl Into<String>, sources: impl Into<PathBuf>) -> Self {
        let mut config: Config = zoomstream_runtime::config::defaults();
        config.listen = ([127, 0, 0, 1], 0).into();
        config.kafka.brokers = brokers.into();
        config.sources = sources.into();
        config
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, value) in [
            ("keep_alive_ms", self.keep_alive_ms),
            ("client_buffer", self.client_buffer as u64),
            ("slow_client_timeout_ms", self.slow_client_timeout_ms),
            ("live_buffer", self.live_buffer as u64),
            ("max_catchups", self.max_catchups as u64),
            ("max_clients", self.max_clients as u64),
            ("max_clients_per_token", self.max_clients_per_token as u64),
            (
                "max_clients_per_address",
                self.max_clients_per_address as u64,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::NotPositive(name));
            }
        }
        self.listener.validate()?;
        if self.listener.idle_timeout_ms <= self.keep_alive_ms {
            return Err(ConfigError::IdleBelowKeepAlive {
                idle: self.listener.idle_timeout_ms,
                keep_alive: self.keep_alive_ms,
            });
        }
        self.source_tokens()?;
        Ok(())
    }

    /// The per-source tokens as (source name, token).
    pub fn source_tokens(&self) -> Result<Vec<(String, SecretString)>, ConfigError> {
        self.source_tokens
            .iter()
            .enumerate()
            .map(|(i, setting)| {
                let (name, token) = setting
                    .expose_secret()
                    .split_once('=')
                    .ok_or(ConfigError::MalformedSourceToken(i + 1))?;
                let (name, token) = (name.trim(), token.trim());
                if name.is_empty() || token.is_empty() {
                    return Err(ConfigError::MalformedSourceToken(i + 1));
                }
                Ok((name.to_owned(), SecretString::from(token.to_owned())))
            })
            .collect()
    }

    pub fn keep_alive(&self) -> Duration {
        Duration::from_millis(self.keep_alive_ms)
    }

    pub fn slow_client_timeout(&self) -> Duration {
        Duration::from_millis(self.slow_client_timeout_ms)
    }

    pub fn consumer_idle(&self) -> Duration {
        Duration::from_millis(self.consumer_idle_ms)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_from_flags_and_never_show() {
        let config = Config::parse_from([
            "zoomstream-sse",
            "--token",
            "gl0bal-secret",
            "--source-token",
            "recording-completed=rec-secret",
            "--source-token",
            "meeting-ended = end-secret",
        ]);
        let tokens = config.source_tokens().unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens[1].0, "meeting-ended");
        assert_eq!(tokens[1].1.expose_secret(), "end-secret");
        let shown = format!("{config:?}");
        assert!(
            shown.contains("recording-completed") && shown.contains("<set>"),
            "{shown}"
        );
        assert!(!shown.contains("secret"), "{shown}");
        config.validate().unwrap();
    }

    #[test]
    fn bad_source_tokens_are_refused_without_echoing_them() {
        for bad in ["hunter2", "a=", "=hunter2"] {
            let config = Config::parse_from(["zoomstream-sse", "--source-token", bad]);
            let err = config.validate().err().unwrap().to_string();
            assert!(!err.contains("hunter2"), "{err}");
            assert!(!format!("{config:?}").contains("hunter2"));
        }
        let mut config = Config::new("b:1", "s.toml");
        config.client_buffer = 0;
        assert!(config.validate().is_err());
    }

    #[test]
    fn config_new_reads_no_environment() {
        // Settings the binary reads from the environment; no other test here checks them.
        std::env::set_var("ZOOMSTREAM_SSE_RETRY_MS", "7");
        std::env::set_var("ZOOMSTREAM_KAFKA_OPTIONS", "socket.timeout.ms=1234");
        let from_env = Config::parse_from(["zoomstream-sse"]);
        let embedded = Config::new("b:1", "s.toml");
        std::env::remove_var("ZOOMSTREAM_SSE_RETRY_MS");
        std::env::remove_var("ZOOMSTREAM_KAFKA_OPTIONS");
        assert_eq!(from_env.retry_ms, 7, "the binary reads the variables");
        assert_eq!(from_env.kafka.options.len(), 1);
        assert_eq!(embedded.retry_ms, 3_000);
        assert!(embedded.kafka.options.is_empty());
        assert_eq!(embedded.kafka.brokers, "b:1");
        assert_eq!(embedded.listen, SocketAddr::from(([127, 0, 0, 1], 0)));
        assert_eq!(embedded.sources, PathBuf::from("s.toml"));
    }

    #[test]
    fn the_config_works_as_a_subcommand_of_the_zoomstream_command() {
        #[derive(Parser)]
        struct Cli {
            #[command(subcommand)]
            command: Command,
        }
        #[derive(clap::Subcommand)]
        enum Command {
            Sse(Config),
        }
        let cli = Cli::parse_from([
            "zoomstream",
            "sse",
            "--token",
            "t",
            "--listen",
            "127.0.0.1:0",
        ]);
        let Command::Sse(config) = cli.command;
        assert_eq!(config.listen.port(), 0);
        assert!(config.token.is_some());
    }
}
