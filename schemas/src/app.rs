use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The Zoom app a webhook was delivered for. Each app has its own secret token and its own
/// webhook path, and offers its own set of events (see [`crate::catalogue`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum App {
    /// The user-level "Zoom" app.
    Zoom,
    /// The account-level "Zoom Admin" app.
    ZoomAdmin,
}

impl App {
    pub const ALL: [App; 2] = [App::Zoom, App::ZoomAdmin];

    /// The stable name used in paths, headers, metrics labels and the sources file.
    pub fn as_str(self) -> &'static str {
        match self {
            App::Zoom => "zoom",
            App::ZoomAdmin => "zoom-admin",
        }
    }
}

impl fmt::Display for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown Zoom app {0:?} (expected \"zoom\" or \"zoom-admin\")")]
pub struct UnknownApp(pub String);

impl FromStr for App {
    type Err = UnknownApp;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "zoom" => Ok(App::Zoom),
            "zoom-admin" => Ok(App::ZoomAdmin),
            other => Err(UnknownApp(other.to_owned())),
        }
    }
}
