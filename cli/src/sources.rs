//! `zoomstream sources`: the sources file checked and shown without starting a processor.
//!
//! `validate` runs the very check a processor runs at start-up ([`sources::load`]), so a file
//! it accepts is one the processors accept; `list` shows what each source takes and where it
//! writes.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use zoomstream_schemas::sources::{self, SourcesError};
use zoomstream_schemas::Apps;

#[derive(clap::Args)]
pub struct SourcesArgs {
    #[command(subcommand)]
    pub command: SourcesCommand,
}

#[derive(clap::Subcommand)]
pub enum SourcesCommand {
    /// Check a sources file as a processor does at start-up; prints every problem with its
    /// line, exits 1 if there is any.
    Validate {
        /// The sources file (default: $ZOOMSTREAM_SOURCES, else schemas/sources.toml).
        #[arg(
            value_name = "FILE",
            env = "ZOOMSTREAM_SOURCES",
            default_value = "schemas/sources.toml"
        )]
        file: PathBuf,
        /// The apps file naming the apps sources may take (default: $ZOOMSTREAM_APPS_FILE,
        /// else the built-in zoom and zoom-admin apps).
        #[arg(long, env = "ZOOMSTREAM_APPS_FILE")]
        apps_file: Option<PathBuf>,
    },
    /// Print each source of a valid sources file: name, app, events, topic and schema.
    List {
        /// The sources file.
        #[arg(
            long,
            env = "ZOOMSTREAM_SOURCES",
            default_value = "schemas/sources.toml"
        )]
        sources: PathBuf,
        /// The apps file naming the apps sources may take.
        #[arg(long, env = "ZOOMSTREAM_APPS_FILE")]
        apps_file: Option<PathBuf>,
    },
}

/// Runs the subcommand; `Ok(false)` when the file is invalid (exit code 1).
pub fn run(args: SourcesArgs) -> anyhow::Result<bool> {
    match args.command {
        SourcesCommand::Validate { file, apps_file } => validate(&file, &apps(apps_file)?),
        SourcesCommand::List { sources, apps_file } => {
            list(&sources, &apps(apps_file)?)?;
            Ok(true)
        }
    }
}

fn apps(file: Option<PathBuf>) -> anyhow::Result<Apps> {
    Ok(Apps::load_or_builtin(file.as_deref())?)
}

fn validate(file: &std::path::Path, apps: &Apps) -> anyhow::Result<bool> {
    match sources::load_with(file, apps) {
        Ok(loaded) => {
            println!("{}: ok, {} sources", file.display(), loaded.sources.len());
            Ok(true)
        }
        Err(SourcesError::Invalid(issues)) => {
            // One problem per line, `file:line: source "name": what`, as compilers print them.
            for issue in &issues {
                println!("{issue}");
            }
            println!("{} problem(s) in {}", issues.len(), file.display());
            Ok(false)
        }
        Err(err @ SourcesError::Read { .. }) => Err(err.into()),
    }
}

fn list(file: &std::path::Path, apps: &Apps) -> anyhow::Result<()> {
    let loaded = sources::load_with(file, apps).with_context(|| {
        format!(
            "loading {} (`zoomstream sources validate` lists every problem)",
            file.display()
        )
    })?;
    let rows: Vec<[String; 5]> = loaded
        .sources
        .iter()
        .map(|s| {
            let mut events = s.events.clone();
            events.extend(s.extra_events.iter().cloned());
            [
                s.name.clone(),
                s.app.to_string(),
                events.join(","),
                s.topic.clone(),
                s.schema_path.file_name().map_or_else(
                    || s.schema_path.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                ),
            ]
        })
        .collect();
    let header = ["NAME", "APP", "EVENTS", "TOPIC", "SCHEMA"].map(String::from);
    let mut widths = [0; 5];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = std::io::stdout().lock();
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    Ok(())
}
