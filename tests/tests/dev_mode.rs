//! `zoomstream dev` end to end, with the real binaries only: dev runs the pipeline on
//! librdkafka's in-process mock cluster (this test needs no broker of its own), `zoomstream send
//! --all` posts every fixture signed as Zoom does, and `zoomstream tail` reads a source topic
//! back through the bootstrap address dev printed. Ends with SIGTERM, which must stop dev
//! cleanly.

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use zoomstream_tests::{binary, event_fixtures, fixtures_dir, run_to_end, schemas_dir};

/// A running `zoomstream dev`; killed when dropped.
struct Dev {
    child: Child,
    stdout: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

/// Where a ready dev can be reached.
struct Endpoints {
    ingest: String,
    kafka: String,
    sse: String,
}

impl Dev {
    fn start() -> Dev {
        Dev::start_with(&sources_file(), &[], &[])
    }

    /// Dev on the sources file `sources`, with more arguments and environment variables.
    fn start_with(
        sources: &std::path::Path,
        args: &[&std::ffi::OsStr],
        env: &[(&str, &str)],
    ) -> Dev {
        let mut child = Command::new(binary("zoomstream"))
            .envs(env.iter().copied())
            .args([
                "dev",
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
                "--sse-listen",
                "127.0.0.1:0",
                "--sources",
            ])
            .arg(sources)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting zoomstream dev");
        // Both pipes are drained for the whole run, so dev never blocks on a full pipe.
        let (tx, stdout) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (err, log) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Dev {
            child,
            stdout,
            stderr,
        }
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for the line dev prints once ingest is ready, and reads the addresses from it.
    fn wait_ready(&self, timeout: Duration) -> Endpoints {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("zoomstream dev ready: ") {
                        let field = |name: &str| {
                            rest.split_whitespace()
                                .find_map(|kv| kv.strip_prefix(name))
                                .unwrap_or_else(|| panic!("no {name} in {line:?}"))
                                .to_owned()
                        };
                        return Endpoints {
                            ingest: field("ingest="),
                            kafka: field("kafka="),
                            sse: field("sse="),
                        };
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "zoomstream dev not ready within {timeout:?}; its log:\n{}",
                    self.log()
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "zoomstream dev exited before it was ready; its log:\n{}",
                    self.log()
                ),
            }
        }
    }

    /// SIGTERM, as docker or systemd stop it; returns how it exited.
    fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for dev") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "zoomstream dev did not stop within {timeout:?} of SIGTERM; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sources_file() -> PathBuf {
    schemas_dir().join("sources.toml")
}

#[test]
fn dev_mode_takes_every_fixture_and_serves_the_source_topics() {
    let mut dev = Dev::start();
    let endpoints = dev.wait_ready(Duration::from_secs(60));

    let sent = run_to_end(
        Command::new(binary("zoomstream"))
            .args(["send", "--url", &endpoints.ingest, "--all"])
            .arg(fixtures_dir()),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&sent.stdout);
    assert!(
        sent.status.success(),
        "send failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    // Every event fixture and the URL validation request, each answered 200; the headers
    // example and the documented answer are not webhooks and are not sent.
    let mut expected: Vec<String> = event_fixtures().into_iter().map(|(name, _)| name).collect();
    expected.push("endpoint.url_validation.json".into());
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        expected.len(),
        "one line per webhook file:\n{stdout}"
    );
    for name in &expected {
        let line = lines
            .iter()
            .find(|l| l.contains(&format!("/{name}: ")))
            .unwrap_or_else(|| panic!("{name} not sent:\n{stdout}"));
        assert!(line.contains(": 200 OK "), "{line}");
    }
    let validation = lines
        .iter()
        .find(|l| l.contains("endpoint.url_validation.json"))
        .unwrap();
    assert!(validation.contains("\"encryptedToken\""), "{validation}");

    let tailed = run_to_end(
        Command::new(binary("zoomstream"))
            .args([
                "tail",
                "zoom.recording-completed",
                "--brokers",
                &endpoints.kafka,
                "--from-beginning",
                "--max",
                "2",
            ])
            .arg("--sources")
            .arg(sources_file()),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&tailed.stdout);
    assert!(
        tailed.status.success(),
        "tail failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&tailed.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON record per line"))
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    // Each line tells where the record is; its value is the decoded Avro record.
    for line in &lines {
        assert!(
            line["partition"].is_i64() && line["offset"].is_i64(),
            "{line}"
        );
        assert_eq!(
            line["headers"]["zoomstream-source"], "recording-completed",
            "{line}"
        );
    }
    let records: Vec<&Value> = lines.iter().map(|l| &l["value"]).collect();
    // One record per recording file; M4A and CHAT are off by default in the shipped sources.
    let file_types: BTreeSet<&str> = records
        .iter()
        .map(|r| r["file_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        file_types,
        BTreeSet::from(["MP4", "TRANSCRIPT"]),
        "{stdout}"
    );
    for record in records.iter().copied() {
        assert_eq!(record["event"], "recording.completed", "{record}");
        assert_eq!(record["app"], "zoom", "{record}");
        assert_eq!(record["meeting_id"], "1234567890", "{record}");
    }
    assert_ne!(records[0]["event_id"], records[1]["event_id"]);

    // The same records as a private SSE stream.
    let events = sse_events(&endpoints.sse, "recording-completed", 2);
    let mut streamed: Vec<&str> = events
        .iter()
        .map(|e| e["file_type"].as_str().unwrap())
        .collect();
    streamed.sort();
    assert_eq!(streamed, ["MP4", "TRANSCRIPT"]);

    let status = dev.terminate(Duration::from_secs(30));
    assert!(
        status.success(),
        "zoomstream dev exited with {status} after SIGTERM; its log:\n{}",
        dev.log()
    );
}

/// Reads `count` events of a source's SSE stream from the beginning, with dev's token.
fn sse_events(base: &str, source: &str, count: usize) -> Vec<Value> {
    use std::io::Write as _;
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("SSE listens");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET /sources/{source}/events?from=earliest HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer zoomstream-dev-sse-token\r\n\r\n"
    )
    .unwrap();
    let mut events = Vec::new();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while events.len() < count {
        line.clear();
        assert!(
            reader.read_line(&mut line).expect("the stream stays open") > 0,
            "the stream ended early"
        );
        if let Some(data) = line.trim_end().strip_prefix("data: ") {
            if let Ok(value) = serde_json::from_str::<Value>(data) {
                if value.get("file_type").is_some() {
                    events.push(value);
                }
            }
        }
    }
    events
}

#[test]
fn dev_mode_takes_an_apps_file_and_each_app_reaches_its_sources() {
    let dir = tempfile::tempdir().unwrap();
    let apps = dir.path().join("apps.toml");
    std::fs::write(
        &apps,
        "[[app]]\nname = \"sales\"\nkind = \"zoom\"\nsecret_tokens_env = \"DEV_SALES_TOKENS\"\n\
         user_id = \"z8yCxjabcdEFGHfp8uQ\"\n",
    )
    .unwrap();
    let sources = dir.path().join("sources.toml");
    std::fs::write(
        &sources,
        format!(
            "[[source]]\nname = \"sales-created\"\napp = \"sales\"\nevents = [\"meeting.created.by_me\"]\n\
             topic = \"sales.created\"\nschema = \"{}\"\n",
            schemas_dir().join("meeting.avsc").display()
        ),
    )
    .unwrap();
    let mut dev = Dev::start_with(
        &sources,
        &["--apps-file".as_ref(), apps.as_os_str()],
        &[("DEV_SALES_TOKENS", "sales-dev-secret")],
    );
    let endpoints = dev.wait_ready(Duration::from_secs(60));

    let send = |app: &str, secret: &str| {
        run_to_end(
            Command::new(binary("zoomstream"))
                .args([
                    "send",
                    "--url",
                    &endpoints.ingest,
                    "--app",
                    app,
                    "--secret",
                    secret,
                ])
                .arg(fixtures_dir().join("meeting.created.json")),
            Duration::from_secs(60),
        )
    };
    let refused = send("sales", "not-the-secret");
    assert!(!refused.status.success(), "another secret is refused");
    assert!(String::from_utf8_lossy(&refused.stdout).contains(": 401 "));
    let sent = send("sales", "sales-dev-secret");
    let stdout = String::from_utf8_lossy(&sent.stdout);
    assert!(sent.status.success(), "{stdout}");
    assert!(stdout.contains(": 200 OK "), "{stdout}");
    let summary = String::from_utf8_lossy(&sent.stderr);
    assert!(summary.contains("/webhooks/sales"), "{summary}");

    let tailed = run_to_end(
        Command::new(binary("zoomstream"))
            .args(["tail", "sales.created", "--brokers", &endpoints.kafka])
            .args(["--from-beginning", "--max", "1", "--sources"])
            .arg(&sources)
            .arg("--apps-file")
            .arg(&apps),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&tailed.stdout);
    assert!(
        tailed.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&tailed.stderr)
    );
    let record: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(record["value"]["app"], "sales", "{record}");
    assert_eq!(
        record["value"]["event"], "meeting.created.by_me",
        "{record}"
    );

    let status = dev.terminate(Duration::from_secs(30));
    assert!(status.success(), "{}", dev.log());
}
