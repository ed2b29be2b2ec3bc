//! A headless Chromium's `EventSource` receives a posted webhook's record.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;
use zoomstream_tests::*;

mod sse_support;
use sse_support::*;

fn chromium() -> PathBuf {
    let path = std::env::var_os("ZOOMSTREAM_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.exists(),
        "{} not found: the browser test needs headless Chromium (Debian: apt-get install -y chromium; \
         .ci/run installs it), or ZOOMSTREAM_CHROMIUM pointing at a Chromium binary",
        path.display()
    );
    path
}

/// What the test page reports back.
#[derive(Default)]
struct Reports {
    open: bool,
    events: Vec<Value>,
    errors: usize,
}

/// Serves the test page at `/` on `port` and collects what it reports to `/report/{what}`.
async fn page_server(port: u16, page: String, reports: Arc<Mutex<Reports>>) -> JoinHandle<()> {
    use axum::routing::{get, post};
    let app = axum::Router::new().route("/", get(move || async move { axum::response::Html(page) })).route(
        "/report/{what}",
        post(move |axum::extract::Path(what): axum::extract::Path<String>, body: String| async move {
            let mut r = reports.lock().unwrap();
            match what.as_str() {
                "open" => r.open = true,
                "event" => r.events.push(serde_json::from_str(&body).expect("a JSON report")),
                _ => r.errors += 1,
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() })
}

/// A process killed when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_event_source_receives_a_posted_webhook() {
    let chromium = chromium();
    let brokers = brokers();
    let sources = TestSources::new(SOURCES);
    let (ingest, processor) = start_pipeline(&brokers, &sources).await;
    let http = reqwest::Client::new();

    // The page is served from another origin than the stream: CORS lets it read.
    let reports = Arc::new(Mutex::new(Reports::default()));
    let page_port = free_port();
    let page_origin = format!("http://127.0.0.1:{page_port}");
    let mut config = sse_config(&sources);
    config.cors_origins = vec![page_origin.clone()];
    let sse = SseApp::start(config).await;
    let template = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser/eventsource.html"),
    )
    .unwrap();
    let stream_url = format!("{}?access_token={TOKEN}", sse.events_url("meeting-started"));
    let page = template.replace("{{STREAM_URL}}", &stream_url);
    let page_task = page_server(page_port, page, reports.clone()).await;

    let profile = std::env::temp_dir().join(format!("{}-chromium", sources.prefix));
    std::fs::create_dir_all(&profile).unwrap();
    let browser = KillOnDrop(
        Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("{page_origin}/"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromium"),
    );

    wait_for(
        "the page's EventSource to open",
        Duration::from_secs(60),
        || async { reports.lock().unwrap().open },
    )
    .await;
    let body = fixture("meeting.started.json");
    let response = post_signed(
        &http,
        &ingest.url("/webhooks/zoom"),
        &sign(ZOOM_SECRET, &body),
        "browser-1",
    )
    .await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let event_id = answer["event_id"].as_str().unwrap().to_owned();

    wait_for(
        "the page to receive the record",
        Duration::from_secs(60),
        || async { !reports.lock().unwrap().events.is_empty() },
    )
    .await;
    let report = reports.lock().unwrap().events[0].clone();
    assert_eq!(report["type"], "meeting.started");
    assert_eq!(report["data"]["event_id"], event_id.as_str());
    assert_eq!(report["data"]["topic"], "My Meeting");
    assert_eq!(report["data"]["meeting_id"], "1234567890");
    assert!(
        !report["id"].as_str().unwrap_or_default().is_empty(),
        "the browser saw the event id: {report}"
    );
    assert!(
        report["dom"]
            .as_str()
            .unwrap_or_default()
            .contains("My Meeting"),
        "the page shows it: {report}"
    );
    assert_eq!(
        reports.lock().unwrap().errors,
        0,
        "the EventSource reported no error"
    );

    drop(browser);
    page_task.abort();
    sse.stop().await;
    processor.stop().await.expect("processor stops");
    ingest.stop().await.expect("ingest stops");
}
