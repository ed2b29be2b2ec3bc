//! The apps of a deployment: which Zoom apps send webhooks, on which path, signed with which
//! secret, and (user-level apps) whose events are `*.by_me`/`*.for_me`. Read from an apps file
//! (`ZOOMSTREAM_APPS_FILE`) by ingest, the processors, the SSE service and the CLI, so they all
//! agree on the names; without one, [`Apps::builtin`] is the two apps zoomstream always had.
//!
//! ```toml
//! [[app]]
//! name = "sales"                            # [a-z0-9-]{1,40}: path, raw header, metrics, sources
//! kind = "zoom"                             # zoom | zoom-admin: decides the catalogue
//! path = "/webhooks/sales"                  # optional, this is the default
//! secret_tokens_env = "SALES_SECRET_TOKEN"  # the variable holding `current[,old…]`
//! user_id = "KdYKjnimT4KPd8FFgQt9FQ"        # optional (zoom kind): decides *.by_me / *.for_me
//! user_email = "sales@example.com"          # optional (zoom kind)
//! ```
//!
//! Secrets never sit in the file: it names the environment variable that holds them, so the
//! file can be committed and mounted as plain configuration.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::app::{App, AppKind};
use crate::catalogue::UserIdentity;

/// One app of the deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppConfig {
    pub app: App,
    /// The path Zoom posts this app's webhooks to.
    pub path: String,
    /// The environment variable holding the app's secret tokens (`current[,old…]`).
    pub secret_tokens_env: String,
    /// The user `*.by_me`, `*.for_me` and `hosted_by_me` refer to (user-level apps).
    pub user: UserIdentity,
}

/// The apps of a deployment, in file order. Names and paths are unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apps {
    apps: Vec<AppConfig>,
}

/// Why an apps file cannot be used. Each message names the file, the line and the app.
#[derive(Debug, thiserror::Error)]
pub enum AppsError {
    #[error("reading the apps file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    app: Vec<Spanned<RawApp>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    name: Spanned<String>,
    kind: AppKind,
    path: Option<Spanned<String>>,
    secret_tokens_env: Spanned<String>,
    user_id: Option<String>,
    user_email: Option<String>,
}

/// Paths the services answer themselves; an app cannot take them.
const RESERVED_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

impl Apps {
    /// The apps of a deployment without an apps file: `zoom` on `/webhooks/zoom` with
    /// `ZOOMSTREAM_ZOOM_SECRET_TOKEN`, `zoom-admin` on `/webhooks/zoom-admin` with
    /// `ZOOMSTREAM_ZOOM_ADMIN_SECRET_TOKEN`; no user (see [`Apps::with_user`]).
    pub fn builtin() -> Apps {
        let entry = |app: App, env: &str| AppConfig {
            app,
            path: default_path(app),
            secret_tokens_env: env.to_owned(),
            user: UserIdentity::default(),
        };
        Apps {
            apps: vec![
                entry(App::ZOOM, "ZOOMSTREAM_ZOOM_SECRET_TOKEN"),
                entry(App::ZOOM_ADMIN, "ZOOMSTREAM_ZOOM_ADMIN_SECRET_TOKEN"),
            ],
        }
    }

    /// The apps file at `path`, or the built-in apps when there is none.
    pub fn load_or_builtin(path: Option<&Path>) -> Result<Apps, AppsError> {
        path.map_or_else(|| Ok(Apps::builtin()), Apps::load)
    }

    pub fn load(path: &Path) -> Result<Apps, AppsError> {
        let text = std::fs::read_to_string(path).map_err(|source| AppsError::Read {
            path: path.to_owned(),
            source,
        })?;
        Apps::parse(&text, &path.display().to_string())
    }

    /// Parses an apps file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Apps, AppsError> {
        let invalid = |message: String| AppsError::Invalid {
            origin: origin.to_owned(),
            message,
        };
        let line = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        // toml's message carries the line and column (unknown keys, a bad kind, missing fields).
        let raw: RawFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if raw.app.is_empty() {
            return Err(invalid("no [[app]] is defined".to_owned()));
        }
        let mut apps: Vec<AppConfig> = Vec::new();
        let mut names: HashMap<&'static str, usize> = HashMap::new();
        let mut paths: HashMap<String, &'static str> = HashMap::new();
        for entry in raw.app {
            let at = line(entry.span().start);
            let raw = entry.into_inner();
            let app = App::new(raw.name.get_ref(), raw.kind)
                .map_err(|e| invalid(format!("line {}: {e}", line(raw.name.span().start))))?;
            let about =
                |message: String| invalid(format!("line {at}: app {:?}: {message}", app.as_str()));
            if let Some(first) = names.insert(app.as_str(), at) {
                return Err(about(format!("is also defined on line {first}")));
            }
            let path = match &raw.path {
                Some(path) => path.get_ref().clone(),
                None => default_path(app),
            };
            check_path(&path).map_err(&about)?;
            if let Some(other) = paths.insert(path.clone(), app.as_str()) {
                return Err(about(format!("path {path} is also app {other:?}'s")));
            }
            let env = raw.secret_tokens_env.get_ref();
            if env.is_empty() || env.contains('=') || env.contains('\0') {
                return Err(about(format!(
                    "secret_tokens_env {env:?} is not an environment variable name"
                )));
            }
            let user = UserIdentity {
                user_id: raw.user_id.filter(|s| !s.is_empty()),
                email: raw.user_email.filter(|s| !s.is_empty()),
            };
            if app.kind() == AppKind::ZoomAdmin && user != UserIdentity::default() {
                return Err(about(
                    "user_id/user_email apply to kind \"zoom\" only (the Zoom Admin app has no \
                     *.by_me or *.for_me events)"
                        .to_owned(),
                ));
            }
            apps.push(AppConfig {
                app,
                path,
                secret_tokens_env: env.clone(),
                user,
            });
        }
        Ok(Apps { apps })
    }

    /// Sets the user of app `app` (the built-in `zoom` app takes `ZOOMSTREAM_ZOOM_USER_ID`
    /// and `ZOOMSTREAM_ZOOM_USER_EMAIL`).
    pub fn with_user(mut self, app: App, user: UserIdentity) -> Apps {
        if let Some(entry) = self.apps.iter_mut().find(|a| a.app == app) {
            entry.user = user;
        }
        self
    }

    /// The app named `name`.
    pub fn get(&self, name: &str) -> Option<&AppConfig> {
        self.apps.iter().find(|a| a.app.as_str() == name)
    }

    /// The app named `name`, if the deployment has one.
    pub fn app(&self, name: &str) -> Option<App> {
        self.get(name).map(|a| a.app)
    }

    pub fn iter(&self) -> impl Iterator<Item = &AppConfig> {
        self.apps.iter()
    }

    /// The apps' names, for messages: `"sales", "support"`.
    pub fn names(&self) -> String {
        let names: Vec<String> = self
            .apps
            .iter()
            .map(|a| format!("{:?}", a.app.as_str()))
            .collect();
        names.join(", ")
    }
}

fn default_path(app: App) -> String {
    format!("/webhooks/{}", app.as_str())
}

/// A path is literal (no route patterns), absolute, and not one the services answer.
fn check_path(path: &str) -> Result<(), String> {
    let literal = path.len() > 1
        && path.starts_with('/')
        && !path.ends_with('/')
        && !path.contains("//")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b));
    if !literal {
        return Err(format!(
            "path {path:?} must start with '/' and hold only a-z, A-Z, 0-9, '-', '_', '.' and \
             single '/'"
        ));
    }
    if RESERVED_PATHS.contains(&path) {
        return Err(format!("path {path} is served by zoomstream itself"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE: &str = r#"
[[app]]
name = "sales"
kind = "zoom"
secret_tokens_env = "SALES_TOKENS"
user_id = "sales-user"

[[app]]
name = "support"
kind = "zoom"
path = "/hooks/support"
secret_tokens_env = "SUPPORT_TOKENS"
user_email = "support@example.com"

[[app]]
name = "admin"
kind = "zoom-admin"
secret_tokens_env = "ADMIN_TOKENS"
"#;

    fn error(text: &str) -> String {
        Apps::parse(text, "apps.toml").unwrap_err().to_string()
    }

    #[test]
    fn a_file_of_three_apps() {
        let apps = Apps::parse(THREE, "apps.toml").unwrap();
        let sales = apps.get("sales").unwrap();
        assert_eq!(sales.app.kind(), AppKind::Zoom);
        assert_eq!(sales.path, "/webhooks/sales");
        assert_eq!(sales.secret_tokens_env, "SALES_TOKENS");
        assert_eq!(sales.user.user_id.as_deref(), Some("sales-user"));
        let support = apps.get("support").unwrap();
        assert_eq!(support.path, "/hooks/support");
        assert_eq!(support.user.email.as_deref(), Some("support@example.com"));
        assert_eq!(apps.app("admin").unwrap().kind(), AppKind::ZoomAdmin);
        assert!(
            apps.get("zoom").is_none(),
            "a file replaces the built-in apps"
        );
        assert_eq!(apps.names(), r#""sales", "support", "admin""#);
    }

    #[test]
    fn the_builtin_apps_are_todays() {
        let apps = Apps::builtin();
        let zoom = apps.get("zoom").unwrap();
        assert_eq!(
            (zoom.app, zoom.path.as_str()),
            (App::ZOOM, "/webhooks/zoom")
        );
        assert_eq!(zoom.secret_tokens_env, "ZOOMSTREAM_ZOOM_SECRET_TOKEN");
        let admin = apps.get("zoom-admin").unwrap();
        assert_eq!(admin.app, App::ZOOM_ADMIN);
        assert_eq!(admin.path, "/webhooks/zoom-admin");
        assert_eq!(
            admin.secret_tokens_env,
            "ZOOMSTREAM_ZOOM_ADMIN_SECRET_TOKEN"
        );
    }

    #[test]
    fn a_bad_kind_is_refused_with_its_line() {
        let text = "[[app]]\nname = \"a\"\nkind = \"zoom-user\"\nsecret_tokens_env = \"A\"\n";
        let e = error(text);
        assert!(e.contains("apps.toml") && e.contains("line 3"), "{e}");
        assert!(e.contains("zoom-admin"), "{e}");
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_line() {
        let text =
            "[[app]]\nname = \"a\"\nkind = \"zoom\"\nsecret_tokens_env = \"A\"\nsecret = \"x\"\n";
        let e = error(text);
        assert!(e.contains("line 5") && e.contains("secret"), "{e}");
    }

    #[test]
    fn duplicate_names_and_paths_are_refused() {
        let dup = format!(
            "{THREE}\n[[app]]\nname = \"sales\"\nkind = \"zoom\"\nsecret_tokens_env = \"B\"\n"
        );
        let e = error(&dup);
        assert!(
            e.contains(r#"app "sales""#) && e.contains("also defined on line 2"),
            "{e}"
        );
        let same_path = format!(
            "{THREE}\n[[app]]\nname = \"other\"\nkind = \"zoom\"\npath = \"/webhooks/sales\"\nsecret_tokens_env = \"B\"\n"
        );
        let e = error(&same_path);
        assert!(
            e.contains(r#"app "other""#) && e.contains(r#"app "sales"'s"#),
            "{e}"
        );
    }

    #[test]
    fn bad_names_paths_and_users_are_refused() {
        let app = |extra: &str| {
            format!(
                "[[app]]\nname = \"a\"\nkind = \"zoom-admin\"\nsecret_tokens_env = \"A\"\n{extra}"
            )
        };
        assert!(error(&app("path = \"webhooks/a\"")).contains("must start with '/'"));
        assert!(error(&app("path = \"/webhooks/{app}\"")).contains("must start with '/'"));
        assert!(error(&app("path = \"/metrics\"")).contains("served by zoomstream"));
        assert!(error(&app("user_id = \"u\"")).contains("kind \"zoom\" only"));
        let e = error("[[app]]\nname = \"Sales\"\nkind = \"zoom\"\nsecret_tokens_env = \"A\"\n");
        assert!(e.contains("line 2") && e.contains("a-z, 0-9"), "{e}");
        assert!(error("").contains("no [[app]]"));
        assert!(error("[[app]]\nname = \"a\"\nkind = \"zoom\"\n").contains("secret_tokens_env"));
    }
}
