//! A Zoom app of a deployment: its *name* (in webhook paths, the raw topic's `zoomstream-app`
//! header, metrics labels and the sources file's `app = …`) and its *kind*, which decides the
//! events it offers (see [`crate::catalogue`]). Without an apps file ([`crate::apps`]) a
//! deployment has the two built-in apps, named after their kind: `zoom` and `zoom-admin`.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

/// Which Zoom Marketplace app type an app is: decides the catalogue it offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppKind {
    /// The user-level "Zoom" app.
    Zoom,
    /// The account-level "Zoom Admin" app.
    ZoomAdmin,
}

impl AppKind {
    pub const ALL: [AppKind; 2] = [AppKind::Zoom, AppKind::ZoomAdmin];

    /// The name of the kind in the apps file (and of the built-in app of that kind).
    pub fn as_str(self) -> &'static str {
        match self {
            AppKind::Zoom => "zoom",
            AppKind::ZoomAdmin => "zoom-admin",
        }
    }

    /// How Zoom's Marketplace calls this app type.
    pub fn label(self) -> &'static str {
        match self {
            AppKind::Zoom => "Zoom",
            AppKind::ZoomAdmin => "Zoom Admin",
        }
    }
}

impl fmt::Display for AppKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown Zoom app kind {0:?} (expected \"zoom\" or \"zoom-admin\")")]
pub struct UnknownKind(pub String);

impl FromStr for AppKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "zoom" => Ok(AppKind::Zoom),
            "zoom-admin" => Ok(AppKind::ZoomAdmin),
            other => Err(UnknownKind(other.to_owned())),
        }
    }
}

/// One app of the deployment. `Copy`: its name is interned once per process (a deployment
/// has a handful of apps, read once at start), so it travels as freely as the old enum did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct App {
    name: &'static str,
    kind: AppKind,
}

/// Longest app name: it becomes part of a path, a header and a metrics label.
pub const MAX_NAME_LEN: usize = 40;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "app name {0:?} is not 1 to {MAX_NAME_LEN} of a-z, 0-9 and '-' (it is used in paths, \
     headers and metrics labels)"
)]
pub struct BadName(pub String);

impl App {
    /// The built-in user-level app: `/webhooks/zoom`, `ZOOMSTREAM_ZOOM_SECRET_TOKEN`.
    pub const ZOOM: App = App {
        name: "zoom",
        kind: AppKind::Zoom,
    };
    /// The built-in account-level app: `/webhooks/zoom-admin`,
    /// `ZOOMSTREAM_ZOOM_ADMIN_SECRET_TOKEN`.
    pub const ZOOM_ADMIN: App = App {
        name: "zoom-admin",
        kind: AppKind::ZoomAdmin,
    };
    /// The apps of a deployment without an apps file.
    pub const DEFAULTS: [App; 2] = [App::ZOOM, App::ZOOM_ADMIN];

    /// An app named `name` (checked: `[a-z0-9-]{1,40}`) of `kind`.
    pub fn new(name: &str, kind: AppKind) -> Result<App, BadName> {
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            return Err(BadName(name.to_owned()));
        }
        Ok(App {
            name: intern(name),
            kind,
        })
    }

    /// The app's name, as in paths, the raw header, metrics labels and the sources file.
    pub fn as_str(self) -> &'static str {
        self.name
    }

    pub fn kind(self) -> AppKind {
        self.kind
    }
}

impl fmt::Display for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// The one `&'static` copy of each app name: names are few and read at start, so the set
/// stays small however often a file is loaded (tests load many).
fn intern(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<BTreeSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(known) = names.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_interned() {
        let a = App::new("sales-2", AppKind::Zoom).unwrap();
        let b = App::new("sales-2", AppKind::Zoom).unwrap();
        assert_eq!(a, b);
        assert!(std::ptr::eq(a.as_str(), b.as_str()));
        assert_eq!(App::new("zoom", AppKind::Zoom).unwrap(), App::ZOOM);
        for bad in ["", "Sales", "a b", "a/b", "é", &"x".repeat(41)] {
            assert!(App::new(bad, AppKind::Zoom).is_err(), "{bad:?}");
        }
        assert!(App::new(&"x".repeat(40), AppKind::ZoomAdmin).is_ok());
    }
}
