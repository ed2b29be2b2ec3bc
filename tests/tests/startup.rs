//! The binaries as an operator meets them: `--help` lists every setting with its variable;
//! a configuration that cannot work stops the start with a message that says what to fix;
//! SIGTERM lets an in-flight webhook finish before ingest exits.

use std::process::Command;
use std::time::Duration;

use zoomstream_schemas::raw::headers;
use zoomstream_tests::*;

fn run(binary_name: &str, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut command = Command::new(binary(binary_name));
    command.env_clear().args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().expect("the binary runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn help_lists_every_setting_with_its_variable() {
    let (ok, help) = run("zoomstream-ingest", &["--help"], &[]);
    assert!(ok);
    for var in [
        "ZOOMSTREAM_KAFKA_BROKERS",
        "ZOOMSTREAM_LISTEN",
        "ZOOMSTREAM_ZOOM_SECRET_TOKEN",
        "ZOOMSTREAM_ZOOM_ADMIN_SECRET_TOKEN",
        "ZOOMSTREAM_RAW_TOPIC",
        "ZOOMSTREAM_REPLAY_WINDOW_SECS",
        "ZOOMSTREAM_MAX_BODY_BYTES",
        "ZOOMSTREAM_PUBLISH_TIMEOUT_MS",
    ] {
        assert!(help.contains(var), "ingest --help lacks {var}:\n{help}");
    }
    let (ok, help) = run("zoomstream-processor", &["--help"], &[]);
    assert!(ok);
    for var in [
        "ZOOMSTREAM_GROUP_ID",
        "ZOOMSTREAM_SOURCES",
        "ZOOMSTREAM_METRICS_LISTEN",
        "ZOOMSTREAM_DELIVERY",
        "ZOOMSTREAM_SCHEMA_REGISTRY_URL",
        "ZOOMSTREAM_BACKFILL_SOURCE",
    ] {
        assert!(help.contains(var), "processor --help lacks {var}:\n{help}");
    }
}

#[test]
fn ingest_refuses_to_start_without_a_secret_and_says_which_to_set() {
    let (ok, text) = run(
        "zoomstream-ingest",
        &[],
        &[("ZOOMSTREAM_LISTEN", "127.0.0.1:0")],
    );
    assert!(!ok, "started without a secret: {text}");
    assert!(
        text.contains("ZOOMSTREAM_ZOOM_SECRET_TOKEN")
            && text.contains("ZOOMSTREAM_ZOOM_ADMIN_SECRET_TOKEN"),
        "{text}"
    );
}

#[test]
fn a_secret_given_on_the_command_line_is_not_echoed_by_help_or_errors() {
    let (_, text) = run(
        "zoomstream-ingest",
        &[
            "--zoom-secret-token",
            "s3cr3t-value",
            "--listen",
            "nonsense",
        ],
        &[],
    );
    assert!(text.contains("nonsense"), "the bad value is named: {text}");
    assert!(!text.contains("s3cr3t-value"), "{text}");
    let (_, help) = run(
        "zoomstream-ingest",
        &["--help"],
        &[("ZOOMSTREAM_ZOOM_SECRET_TOKEN", "s3cr3t-value")],
    );
    assert!(
        !help.contains("s3cr3t-value"),
        "--help shows env values of secrets: {help}"
    );
}

#[test]
fn the_processor_refuses_an_invalid_sources_file_naming_the_line_and_source() {
    let dir = std::env::temp_dir().join(unique("sources"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sources.toml");
    std::fs::write(
        &path,
        format!(
            "[[source]]\nname = \"ended\"\napp = \"zoom\"\nevents = [\"meeting.endd\"]\ntopic = \"t1\"\nschema = \"{0}/meeting.avsc\"\n\n\
             [[source]]\nname = \"admin\"\napp = \"zoom-admin\"\nevents = [\"meeting.created.by_me\"]\ntopic = \"t1\"\nschema = \"{0}/nope.avsc\"\n",
            schemas_dir().display()
        ),
    )
    .unwrap();
    let sources = path.to_str().unwrap();
    let (ok, text) = run(
        "zoomstream-processor",
        &["--sources", sources, "--metrics-listen", "127.0.0.1:0"],
        &[],
    );
    assert!(!ok, "started with an invalid sources file: {text}");
    assert!(
        text.contains("sources.toml:4")
            && text.contains("\"ended\"")
            && text.contains("meeting.endd"),
        "{text}"
    );
    assert!(
        text.contains("\"admin\"") && text.contains("meeting.created.by_me"),
        "the second problem is named too: {text}"
    );
    assert!(text.contains("t1"), "the duplicate topic: {text}");
    assert!(text.contains("nope.avsc"), "the missing schema: {text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_an_in_flight_webhook_finish_then_ingest_exits_cleanly() {
    let broker = KafkaCluster::single();
    let topic = unique("raw");
    create_topic(&broker.bootstrap(), &topic, 1).await;
    let mut ingest = IngestProcess::spawn(&[
        ("ZOOMSTREAM_KAFKA_BROKERS", broker.bootstrap()),
        ("ZOOMSTREAM_RAW_TOPIC", topic.clone()),
        ("ZOOMSTREAM_ZOOM_SECRET_TOKEN", "graceful".into()),
        ("ZOOMSTREAM_PUBLISH_TIMEOUT_MS", "2500".into()),
    ]);
    let client = reqwest::Client::new();
    ingest.wait_ready(&client).await;

    // The broker pauses, so the webhook waits in flight for its acknowledgement.
    broker.signal(1, "STOP");
    let url = ingest.url("/webhooks/zoom");
    let signed = sign("graceful", &fixture("meeting.ended.json"));
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move {
            post_signed(&client, &url, &signed, "in-flight")
                .await
                .status()
                .as_u16()
        }
    });
    wait_for(
        "the webhook to be in flight",
        Duration::from_secs(10),
        || async {
            let page = get_text(&client, &ingest.url("/metrics")).await;
            metric(&page, "zoomstream_ingest_in_flight_requests") == 1.0
        },
    )
    .await;
    Command::new("kill")
        .args(["-TERM", &ingest.child.id().to_string()])
        .status()
        .unwrap();
    broker.signal(1, "CONT");

    assert_eq!(
        in_flight.await.unwrap(),
        200,
        "the in-flight webhook is answered, after its acknowledgement"
    );
    let status = tokio::task::spawn_blocking(move || ingest.child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "ingest exits 0 after draining: {status}");
    let records = read_topic_until(&broker.bootstrap(), &topic, Duration::from_secs(30), |r| {
        !r.is_empty()
    });
    assert_eq!(
        records[0].header(headers::ZM_REQUEST_ID).as_deref(),
        Some("in-flight")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_serves_metrics_on_their_own_port_and_not_on_the_webhook_port() {
    let metrics_port = free_port();
    let ingest = IngestProcess::spawn(&[
        ("ZOOMSTREAM_KAFKA_BROKERS", brokers()),
        ("ZOOMSTREAM_RAW_TOPIC", unique("raw")),
        ("ZOOMSTREAM_ZOOM_SECRET_TOKEN", "a-secret".into()),
        (
            "ZOOMSTREAM_METRICS_LISTEN",
            format!("127.0.0.1:{metrics_port}"),
        ),
    ]);
    let client = reqwest::Client::new();
    ingest.wait_ready(&client).await;
    // An unsigned webhook: counted as rejected, on the metrics port only.
    let rejected = client
        .post(ingest.url("/webhooks/zoom"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(rejected.status(), 401);

    let public = client.get(ingest.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 404, "no metrics on the webhook port");
    let page = get_text(&client, &format!("http://127.0.0.1:{metrics_port}/metrics")).await;
    assert!(page.contains("zoomstream_ingest_requests_total{"), "{page}");
    let health = client
        .get(format!("http://127.0.0.1:{metrics_port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // The webhook port keeps its health and readiness endpoints.
    let readyz = client.get(ingest.url("/readyz")).send().await.unwrap();
    assert_eq!(readyz.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_processor_warns_at_start_naming_the_sources_that_need_a_user_it_lacks() {
    let brokers = brokers();
    let sources = TestSources::new(
        r#"
[[source]]
name = "mine-created"
app = "zoom"
events = ["meeting.created.by_me"]
topic = "mine-created"
schema = "meeting.avsc"

[[source]]
name = "hosted"
app = "zoom"
events = ["meeting.ended"]
topic = "hosted"
schema = "meeting.avsc"
[source.options]
hosted_by_me = true

[[source]]
name = "started"
app = "zoom"
events = ["meeting.started"]
topic = "started"
schema = "meeting.avsc"

[[source]]
name = "old-name"
app = "zoom"
events = ["recording.registration_completed"]
topic = "old-name"
schema = "envelope.avsc"
"#,
    );
    // No ZOOMSTREAM_ZOOM_USER_ID nor _EMAIL: the process is started as an operator who forgot.
    let config = processor_config(&brokers, &unique("raw"), &sources);
    let mut processor = ProcessorProcess::spawn(&config, "unconfigured");
    wait_for(
        "the processor to serve its metrics",
        Duration::from_secs(60),
        || async { processor.metrics().is_some() },
    )
    .await;
    let log = std::fs::read_to_string(&processor.log).unwrap();
    let warning = log
        .lines()
        .find(|l| l.contains("decide by the configured Zoom user"))
        .unwrap_or_else(|| panic!("no warning about the missing user:\n{log}"));
    assert!(
        warning.contains("WARN") && warning.contains("mine-created, hosted"),
        "{warning}"
    );
    assert!(!warning.contains("started"), "{warning}");
    assert!(
        log.lines().any(|l| l.contains("WARN")
            && l.contains("recording.registration_completed")
            && l.contains("recording.registration_created")),
        "the seed's row 50 spelling is warned about:\n{log}"
    );
    processor.terminate();
}
