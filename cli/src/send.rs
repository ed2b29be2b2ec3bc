//! `zoomstream send`: webhook bodies signed and posted exactly as Zoom delivers them.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use zoomstream_schemas::{App, AppKind};

use crate::dev::dev_secret;

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["fixtures", "all"])))]
pub struct SendArgs {
    /// Webhook bodies to send, in order (JSON files, sent byte for byte).
    #[arg(value_name = "FIXTURE.json")]
    pub fixtures: Vec<PathBuf>,

    /// Send every `*.json` file of DIR in name order, except files starting with `_` (examples
    /// of headers and the like) and `*.response.json` files (documented answers).
    #[arg(long, value_name = "DIR")]
    pub all: Option<PathBuf>,

    /// The Zoom app the webhooks are for: the path /webhooks/APP, and, for the built-in `zoom`
    /// and `zoom-admin`, the default secret. An app of an apps file needs `--secret`.
    #[arg(long, default_value = "zoom", value_parser = app_name)]
    pub app: String,

    /// The app's secret token [default: the one `zoomstream dev` uses for a built-in app].
    #[arg(long, value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub secret: Option<String>,

    /// Base URL of ingest.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
}

/// An app name as the apps file takes it (the kind does not matter to a sender).
fn app_name(s: &str) -> Result<String, String> {
    App::new(s, AppKind::Zoom)
        .map(|app| app.as_str().to_owned())
        .map_err(|e| e.to_string())
}

/// Sends every file; `Ok(false)` when any answer was not 200 or any request failed.
pub async fn run(args: SendArgs) -> anyhow::Result<bool> {
    let files = match &args.all {
        Some(dir) => webhook_files(dir)?,
        None => args.fixtures.clone(),
    };
    let Some(secret) = args.secret.as_deref().or_else(|| dev_secret(&args.app)) else {
        bail!("--secret is needed for app {:?} (only the built-in zoom and zoom-admin apps have a development secret)", args.app);
    };
    let url = format!("{}/webhooks/{}", args.url.trim_end_matches('/'), args.app);
    // Zoom gives up after 3 s; a little more shows a slow answer instead of hiding it.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .context("creating the HTTP client")?;

    let mut failed = 0;
    for file in &files {
        let name = file.display();
        match send_one(&client, &url, secret, file).await {
            Ok((status, body)) => {
                println!("{name}: {status} {}", body.trim());
                if status != reqwest::StatusCode::OK {
                    failed += 1;
                }
            }
            Err(err) => {
                println!("{name}: error: {err:#}");
                failed += 1;
            }
        }
    }
    eprintln!(
        "sent {} webhook(s) to {url}: {} answered 200, {failed} did not",
        files.len(),
        files.len() - failed
    );
    Ok(failed == 0)
}

/// The webhook files of a fixtures directory, in name order.
pub fn webhook_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if path.is_file()
            && name.ends_with(".json")
            && !name.starts_with('_')
            && !name.ends_with(".response.json")
        {
            files.push(path);
        }
    }
    if files.is_empty() {
        bail!(
            "{} holds no webhook files (*.json, not _* nor *.response.json)",
            dir.display()
        );
    }
    files.sort();
    Ok(files)
}

/// Posts one file with Zoom's headers, signed now; returns the answer's status and body.
async fn send_one(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    file: &Path,
) -> anyhow::Result<(reqwest::StatusCode, String)> {
    let body = std::fs::read(file).context("reading the file")?;
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs()
        .to_string();
    let signature = zoomstream_ingest::verify::sign(secret, &timestamp, &body);
    // Zoom's request ids are v4 UUIDs written with underscores.
    let request_id = uuid::Uuid::new_v4().to_string().replace('-', "_");
    let response = client
        .post(url)
        .header("content-type", "application/json; charset=utf-8")
        .header("user-agent", "Zoom Marketplace/1.0a")
        .header("x-zm-request-timestamp", timestamp)
        .header("x-zm-signature", signature)
        .header("x-zm-request-id", request_id)
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await.context("reading the answer")?;
    Ok((status, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_skips_examples_and_documented_answers() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        std::fs::create_dir_all(dir.join("nested.json")).unwrap();
        for name in [
            "b.json",
            "a.json",
            "_headers.json",
            "a.response.json",
            "notes.txt",
        ] {
            std::fs::write(dir.join(name), "{}").unwrap();
        }
        let names: Vec<String> = webhook_files(dir)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.json", "b.json"]);
    }
}
