//! The apps ingest receives webhooks for, each on its path with its secret tokens: from the
//! apps file (`ZOOMSTREAM_APPS_FILE`, each app's tokens in the variable it names), or, without
//! one, the built-in `zoom` and `zoom-admin` apps with `ZOOMSTREAM_ZOOM_SECRET_TOKEN` and
//! `ZOOMSTREAM_ZOOM_ADMIN_SECRET_TOKEN` as before.

use zoomstream_schemas::apps::AppsError;
use zoomstream_schemas::{App, Apps};

use crate::config::Config;
use crate::secrets::SecretTokens;

/// One app ingest answers on `path`. Without secret tokens (a built-in app whose variable is
/// unset), its path answers 404 `app_not_configured`.
#[derive(Clone)]
pub struct ReceivingApp {
    pub app: App,
    pub path: String,
    pub secrets: Option<SecretTokens>,
}

/// Why the apps cannot be received for.
#[derive(Debug, thiserror::Error)]
pub enum AppsConfigError {
    #[error(transparent)]
    File(#[from] AppsError),
    #[error(
        "app {app:?} of the apps file: its secret_tokens_env variable {env} is not set (it holds \
         the app's secret token, found in its Feature page on the Zoom Marketplace)"
    )]
    MissingSecret { app: String, env: String },
    #[error("app {app:?} of the apps file: the variable {env}: {reason}")]
    BadSecret {
        app: String,
        env: String,
        reason: String,
    },
}

/// The apps of `config`; `env` reads the variables an apps file names (the process
/// environment in the binary).
pub fn receiving_apps(
    config: &Config,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<ReceivingApp>, AppsConfigError> {
    let Some(file) = &config.apps_file else {
        return Ok(Apps::builtin()
            .iter()
            .map(|entry| ReceivingApp {
                app: entry.app,
                path: entry.path.clone(),
                secrets: config.secret(entry.app).cloned(),
            })
            .collect());
    };
    Apps::load(file)?
        .iter()
        .map(|entry| {
            let name = || entry.app.as_str().to_owned();
            let env_name = || entry.secret_tokens_env.clone();
            let value =
                env(&entry.secret_tokens_env).ok_or_else(|| AppsConfigError::MissingSecret {
                    app: name(),
                    env: env_name(),
                })?;
            let secrets =
                SecretTokens::parse(&value).map_err(|reason| AppsConfigError::BadSecret {
                    app: name(),
                    env: env_name(),
                    reason,
                })?;
            Ok(ReceivingApp {
                app: entry.app,
                path: entry.path.clone(),
                secrets: Some(secrets),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn with_file(text: &str) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("apps.toml");
        std::fs::write(&path, text).unwrap();
        let mut config = Config::new("b:1");
        config.apps_file = Some(path);
        (dir, config)
    }

    const TWO: &str = "[[app]]\nname = \"sales\"\nkind = \"zoom\"\nsecret_tokens_env = \"SALES\"\n\
                       [[app]]\nname = \"corp\"\nkind = \"zoom-admin\"\npath = \"/z/corp\"\n\
                       secret_tokens_env = \"CORP\"\n";

    #[test]
    fn each_app_of_the_file_takes_the_tokens_of_the_variable_it_names() {
        let (_dir, config) = with_file(TWO);
        let apps = receiving_apps(&config, |name| match name {
            "SALES" => Some("new,old".to_owned()),
            "CORP" => Some("corp".to_owned()),
            _ => None,
        })
        .unwrap();
        let summary: Vec<(&str, &str, usize)> = apps
            .iter()
            .map(|a| {
                let secrets = a.secrets.as_ref().unwrap();
                (a.app.as_str(), a.path.as_str(), secrets.all().len())
            })
            .collect();
        assert_eq!(
            summary,
            [("sales", "/webhooks/sales", 2), ("corp", "/z/corp", 1)]
        );
        let current = apps[0].secrets.as_ref().unwrap().current();
        assert_eq!(current.expose_secret(), "new");
    }

    #[test]
    fn a_missing_or_empty_variable_names_the_app() {
        let (_dir, config) = with_file(TWO);
        let missing = receiving_apps(&config, |name| (name == "SALES").then(|| "s".to_owned()))
            .err()
            .unwrap()
            .to_string();
        assert!(
            missing.contains(r#"app "corp""#) && missing.contains("CORP is not set"),
            "{missing}"
        );
        let empty = receiving_apps(&config, |_| Some(String::new()))
            .err()
            .unwrap()
            .to_string();
        assert!(empty.contains(r#"app "sales""#), "{empty}");
        assert!(!empty.contains("new"), "no token is printed");
    }

    #[test]
    fn without_a_file_the_builtin_apps_take_the_old_variables() {
        let mut config = Config::new("b:1");
        config.zoom_secret_token = Some(SecretTokens::from("z".to_owned()));
        let apps = receiving_apps(&config, |_| panic!("no variable is read")).unwrap();
        assert_eq!(apps.len(), 2);
        assert_eq!(
            (apps[0].app, apps[0].path.as_str()),
            (App::ZOOM, "/webhooks/zoom")
        );
        assert!(apps[0].secrets.is_some());
        assert_eq!(apps[1].app, App::ZOOM_ADMIN);
        assert!(apps[1].secrets.is_none());
    }
}
