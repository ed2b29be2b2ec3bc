//! The figures tests measure (records expected / found / duplicated, kills survived, answer
//! times): printed, and appended to `target/test-figures.txt`, which `scripts/test` prints after
//! the run, since cargo test hides the output of a test that passed. RELIABILITY.md quotes them.

use std::io::Write as _;
use std::path::PathBuf;

pub fn figures_file() -> PathBuf {
    crate::broker::workspace_target().join("test-figures.txt")
}

pub fn record(line: &str) {
    eprintln!("{line}");
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(figures_file())
        .and_then(|mut f| writeln!(f, "{line}"));
    if let Err(e) = appended {
        eprintln!("could not append to {}: {e}", figures_file().display());
    }
}

/// `figures!("…", args)`: formats a line of figures and [`record`]s it.
#[macro_export]
macro_rules! figures {
    ($($arg:tt)*) => {
        $crate::figures::record(&format!($($arg)*))
    };
}
