//! How to reach the Schema Registry: flattened into the config of every service that talks to it.

use std::fmt;
use std::path::PathBuf;

use secrecy::SecretString;

/// The Schema Registry's address and credentials. Secrets are never logged; the URL is logged
/// without its user info.
#[derive(Clone, Default, clap::Args)]
pub struct RegistryArgs {
    /// Confluent-compatible Schema Registry, e.g. `http://registry:8081` or Apicurio's
    /// `http://apicurio:8080/apis/ccompat/v7`. Credentials in the URL (`https://user:pass@…`)
    /// are used as basic auth.
    #[arg(
        id = "schema_registry_url",
        long = "schema-registry-url",
        env = "ZOOMSTREAM_SCHEMA_REGISTRY_URL"
    )]
    pub url: Option<String>,

    /// Basic-auth user (Confluent Cloud: the API key).
    #[arg(
        id = "schema_registry_username",
        long = "schema-registry-username",
        env = "ZOOMSTREAM_SCHEMA_REGISTRY_USERNAME"
    )]
    pub username: Option<String>,

    /// Basic-auth password (Confluent Cloud: the API secret).
    #[arg(
        id = "schema_registry_password",
        long = "schema-registry-password",
        env = "ZOOMSTREAM_SCHEMA_REGISTRY_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<SecretString>,

    /// Bearer token (OAuth), sent as `Authorization: Bearer …` instead of basic auth.
    #[arg(
        id = "schema_registry_token",
        long = "schema-registry-token",
        env = "ZOOMSTREAM_SCHEMA_REGISTRY_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<SecretString>,

    /// PEM file of the CA certificates to trust for an `https` registry, instead of the
    /// system's roots.
    #[arg(
        id = "schema_registry_ca_file",
        long = "schema-registry-ca-file",
        env = "ZOOMSTREAM_SCHEMA_REGISTRY_CA_FILE"
    )]
    pub ca_file: Option<PathBuf>,
}

impl RegistryArgs {
    /// A registry at `url`, without credentials.
    pub fn new(url: impl Into<String>) -> RegistryArgs {
        RegistryArgs {
            url: Some(url.into()),
            ..RegistryArgs::default()
        }
    }
}

impl fmt::Debug for RegistryArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryArgs")
            .field(
                "url",
                &self.url.as_deref().map(super::client::without_user_info),
            )
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[hidden]"))
            .field("token", &self.token.as_ref().map(|_| "[hidden]"))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}
