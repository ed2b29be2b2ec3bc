//! Kafka client settings shared by every service, and topic creation with its settings.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::kafka_properties::{PropertiesFile, PropertiesFileParser};

/// How to reach Kafka. Flattened into each service's config, so every service takes the same
/// `--kafka-brokers` / `ZOOMSTREAM_KAFKA_BROKERS` and the same librdkafka passthrough.
#[derive(Clone, clap::Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, comma-separated.
    #[arg(
        long = "kafka-brokers",
        env = "ZOOMSTREAM_KAFKA_BROKERS",
        default_value = "localhost:9092"
    )]
    pub brokers: String,

    /// Extra librdkafka settings as `key=value` (repeatable; in the environment, comma-separated),
    /// e.g. `security.protocol=SASL_SSL`. Applied last, so they override zoomstream's defaults.
    /// Values are never logged.
    #[arg(
        long = "kafka-option",
        env = "ZOOMSTREAM_KAFKA_OPTIONS",
        value_delimiter = ',',
        value_parser = OptionParser,
        hide_env_values = true
    )]
    pub options: Vec<(String, String)>,

    /// librdkafka settings from a Java properties file (`key=value` lines, as Kafka's own tools
    /// take them), for values the comma-separated variable cannot carry (a password with a
    /// comma). Applied before `--kafka-option`. Values are never logged nor shown in errors.
    #[arg(
        long = "kafka-options-file",
        env = "ZOOMSTREAM_KAFKA_OPTIONS_FILE",
        value_parser = PropertiesFileParser
    )]
    pub options_file: Option<PropertiesFile>,
}

/// Parses `key=value` without ever echoing the value: clap's own error for a refused value
/// quotes it, and these values hold SASL passwords.
#[derive(Clone, Copy)]
struct OptionParser;

impl clap::builder::TypedValueParser for OptionParser {
    type Value = (String, String);

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let parsed = value
            .to_str()
            .ok_or(OptionError::NotUtf8)
            .and_then(parse_option);
        parsed.map_err(|err| {
            clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                format!(
                    "--kafka-option / ZOOMSTREAM_KAFKA_OPTIONS: {err} (the value is not shown)\n"
                ),
            )
            .with_cmd(cmd)
        })
    }
}

/// A librdkafka option that cannot be parsed; never quotes the value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
enum OptionError {
    #[error("an entry is not of the form key=value")]
    NoEquals,
    #[error("an entry has an empty option name")]
    EmptyName,
    #[error("an entry is not UTF-8")]
    NotUtf8,
}

/// Parses `key=value` of a setting that is no secret (topic configs): errors quote the entry.
pub fn parse_setting(s: &str) -> Result<(String, String), String> {
    parse_option(s).map_err(|err| format!("{err}: {s:?}"))
}

fn parse_option(s: &str) -> Result<(String, String), OptionError> {
    let (k, v) = s.split_once('=').ok_or(OptionError::NoEquals)?;
    let k = k.trim();
    if k.is_empty() {
        return Err(OptionError::EmptyName);
    }
    Ok((k.to_owned(), v.trim().to_owned()))
}

impl fmt::Debug for KafkaArgs {
    // Passthrough values may hold SASL passwords: show the names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.options.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("KafkaArgs")
            .field("brokers", &self.brokers)
            .field("options", &names)
            .field("options_file", &self.options_file)
            .finish()
    }
}

impl KafkaArgs {
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaArgs {
            brokers: brokers.into(),
            options: Vec::new(),
            options_file: None,
        }
    }

    /// `error` as text with every passthrough value replaced by `<redacted>`: librdkafka's
    /// config errors quote the value they refuse.
    pub fn redacted(&self, error: &dyn fmt::Display) -> String {
        let mut text = error.to_string();
        for (_, value) in self.passthrough() {
            if !value.is_empty() {
                text = text.replace(value, "<redacted>");
            }
        }
        text
    }

    /// The user's librdkafka settings: the properties file's, then `--kafka-option`'s.
    fn passthrough(&self) -> impl Iterator<Item = (&str, &str)> {
        let from_file = self.options_file.iter().flat_map(|f| f.options.iter());
        from_file
            .chain(&self.options)
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// A client config with the brokers, the given service defaults, then the user's passthrough.
    pub fn client_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut settings: BTreeMap<&str, &str> = BTreeMap::new();
        settings.insert("bootstrap.servers", &self.brokers);
        settings.extend(defaults.iter().copied());
        for (k, v) in self.passthrough() {
            settings.insert(k, v);
        }
        let mut config = ClientConfig::new();
        for (k, v) in settings {
            config.set(k, v);
        }
        config
    }
}

/// A topic a service needs, created when missing.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i32,
    /// Topic configs set at creation (`retention.ms`, `max.message.bytes` …).
    pub configs: Vec<(String, String)>,
}

/// Whether and how a service creates the topics it writes. Flattened into the config of each
/// service that creates topics, so they take the same `--create-topics` /
/// `ZOOMSTREAM_CREATE_TOPICS` and `--replication-factor` / `ZOOMSTREAM_REPLICATION_FACTOR`.
#[derive(Debug, Clone, clap::Args)]
pub struct TopicCreationArgs {
    /// Create the topics this service writes when they are missing (off where topics are
    /// provisioned separately).
    #[arg(
        long = "create-topics",
        value_name = "CREATE_TOPICS",
        env = "ZOOMSTREAM_CREATE_TOPICS",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub create: bool,

    /// Replication factor of the topics this service creates.
    #[arg(
        long = "replication-factor",
        env = "ZOOMSTREAM_REPLICATION_FACTOR",
        default_value_t = 1
    )]
    pub replication_factor: i32,
}

impl TopicCreationArgs {
    /// The spec of a topic this service creates, with its configs.
    pub fn spec(
        &self,
        name: impl Into<String>,
        partitions: i32,
        configs: Vec<(String, String)>,
    ) -> TopicSpec {
        TopicSpec {
            name: name.into(),
            partitions,
            replication_factor: self.replication_factor,
            configs,
        }
    }
}

/// Creates the topics that do not exist yet, with their configs. A topic that already exists is
/// left as it is.
#[tracing::instrument(skip_all, fields(topics = topics.len()))]
pub async fn ensure_topics(kafka: &KafkaArgs, topics: &[TopicSpec]) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = kafka
        .client_config(&[])
        .create()
        .map_err(|err| anyhow::anyhow!(kafka.redacted(&err)))
        .context("creating the Kafka admin client")?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| {
            t.configs.iter().fold(
                NewTopic::new(
                    &t.name,
                    t.partitions,
                    TopicReplication::Fixed(t.replication_factor),
                ),
                |topic, (k, v)| topic.set(k, v),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(new_topics.iter(), &options)
        .await
        .context("asking Kafka to create topics")?;
    for result in results {
        match result {
            Ok(name) => tracing::info!(topic = %name, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(KafkaError::AdminOp(code))
                    .with_context(|| format!("creating topic {name}"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passthrough_overrides_defaults_and_is_not_debug_printed() {
        let mut args = KafkaArgs::new("b:1");
        args.options.push(("acks".into(), "1".into()));
        args.options
            .push(("sasl.password".into(), "hunter2".into()));
        let cfg = args.client_config(&[("acks", "all"), ("linger.ms", "5")]);
        assert_eq!(cfg.get("acks"), Some("1"));
        assert_eq!(cfg.get("linger.ms"), Some("5"));
        assert_eq!(cfg.get("bootstrap.servers"), Some("b:1"));
        let shown = format!("{args:?}");
        assert!(shown.contains("sasl.password"));
        assert!(!shown.contains("hunter2"));
    }

    #[test]
    fn options_parse_as_key_value() {
        assert_eq!(
            parse_option("a.b = c=d").unwrap(),
            ("a.b".into(), "c=d".into())
        );
        assert_eq!(parse_option("novalue"), Err(OptionError::NoEquals));
        assert_eq!(parse_option("=x"), Err(OptionError::EmptyName));
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        kafka: KafkaArgs,
    }

    #[test]
    fn a_refused_option_is_never_echoed() {
        use clap::Parser as _;
        let err = Cli::try_parse_from(["x", "--kafka-option", "sasl.password:hunter2"])
            .err()
            .expect("refused");
        let shown = err.to_string();
        assert!(
            shown.contains("key=value") && !shown.contains("hunter2"),
            "{shown}"
        );

        let cli = Cli::parse_from(["x", "--kafka-option", "security.protocol=hunter2"]);
        let err = cli
            .kafka
            .client_config(&[])
            .create::<rdkafka::producer::BaseProducer>()
            .err()
            .expect("librdkafka refuses the protocol");
        assert!(err.to_string().contains("hunter2"), "librdkafka quotes it");
        let shown = cli.kafka.redacted(&err);
        assert!(
            !shown.contains("hunter2") && shown.contains("<redacted>"),
            "{shown}"
        );
    }
}
