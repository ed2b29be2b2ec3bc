//! The operator's `zoomstream` commands, as the real binary against the real broker:
//! `sources validate` / `sources list`, `tail` with its start positions, and `backfill` with
//! its progress lines and its refusal to re-run a finished backfill without `--reset`.

use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer as _};
use serde_json::Value;
use zoomstream_tests::*;

fn zoomstream(args: &[&str]) -> Command {
    let mut command = Command::new(binary("zoomstream"));
    // From the repository root, as an operator runs it: schemas/sources.toml is the default.
    command
        .args(args)
        .env_remove("ZOOMSTREAM_SOURCES")
        .current_dir(schemas_dir().parent().unwrap());
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json_lines(output: &Output) -> Vec<Value> {
    text(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn sources_validate_names_every_problem_with_its_line_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("sources.toml");
    std::fs::write(
        &broken,
        format!(
            r#"[[source]]
name = "started"
app = "zoom"
events = ["meeting.started"]
topic = "t.started"
schema = "{schemas}/meeting.avsc"

[[source]]
name = "admin"
app = "zoom"
events = ["meeting.no-such-event"]
topic = "t.started"
schema = "{schemas}/meeting.avsc"
"#,
            schemas = schemas_dir().display()
        ),
    )
    .unwrap();
    let output = zoomstream(&["sources", "validate"])
        .arg(&broken)
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let file = broken.display().to_string();
    // The unknown event on line 11, the duplicate topic on line 12; both, in file order.
    let problems: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with(&format!("{file}:")))
        .collect();
    assert_eq!(problems.len(), 2, "{stdout}");
    assert!(problems[0].starts_with(&format!("{file}:11: ")), "{stdout}");
    assert!(problems[0].contains("meeting.no-such-event"), "{stdout}");
    assert!(problems[1].starts_with(&format!("{file}:12: ")), "{stdout}");
    assert!(problems[1].contains("\"t.started\""), "{stdout}");

    let shipped = zoomstream(&["sources", "validate"])
        .arg(schemas_dir().join("sources.toml"))
        .output()
        .unwrap();
    assert!(shipped.status.success(), "{}", text(&shipped.stdout));
    assert!(text(&shipped.stdout).contains(": ok, "));
}

#[test]
fn sources_validate_checks_the_apps_a_source_names_against_the_apps_file() {
    let dir = tempfile::tempdir().unwrap();
    let apps = dir.path().join("apps.toml");
    std::fs::write(
        &apps,
        "[[app]]\nname = \"sales\"\nkind = \"zoom\"\nsecret_tokens_env = \"S\"\n\
         [[app]]\nname = \"corp\"\nkind = \"zoom-admin\"\nsecret_tokens_env = \"C\"\n",
    )
    .unwrap();
    let sources = dir.path().join("sources.toml");
    let write = |app: &str, event: &str| {
        let text = format!(
            "[[source]]\nname = \"s\"\napp = \"{app}\"\nevents = [\"{event}\"]\ntopic = \"t.s\"\n\
             schema = \"{}/meeting.avsc\"\n",
            schemas_dir().display()
        );
        std::fs::write(&sources, text).unwrap();
    };
    let validate = || {
        let output = zoomstream(&["sources", "validate", "--apps-file"])
            .arg(&apps)
            .arg(&sources)
            .output()
            .unwrap();
        (output.status.code(), text(&output.stdout))
    };
    write("sales", "meeting.created.by_me");
    let (code, stdout) = validate();
    assert_eq!(code, Some(0), "{stdout}");
    // The kind of the app decides the catalogue: corp is a Zoom Admin app.
    write("corp", "meeting.created.by_me");
    let (code, stdout) = validate();
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains(r#"not offered by the "corp" (Zoom Admin) app"#),
        "{stdout}"
    );
    // The built-in apps are not apps of a deployment with an apps file.
    write("zoom", "meeting.started");
    let (code, stdout) = validate();
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains(r#"its apps: "sales", "corp""#), "{stdout}");
}

#[test]
fn sources_list_shows_name_app_events_topic_and_schema_of_each_source() {
    let shipped = schemas_dir().join("sources.toml");
    let file = zoomstream_schemas::sources::load(&shipped).unwrap();
    let output = zoomstream(&["sources", "list", "--sources"])
        .arg(&shipped)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        file.sources.len() + 1,
        "a header and one line each"
    );
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["NAME", "APP", "EVENTS", "TOPIC", "SCHEMA"]);
    for (source, line) in file.sources.iter().zip(&lines[1..]) {
        let columns: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(columns[0], source.name, "{line}");
        assert_eq!(columns[1], source.app.as_str(), "{line}");
        assert!(columns[2].contains(&source.events[0]), "{line}");
        assert_eq!(columns[3], source.topic, "{line}");
        assert!(source.schema_path.ends_with(columns[4]), "{line}");
    }
}

/// Records `0..count` on `partition`, keyed `k<i>`, with header `n: <i>`, written at `at_ms`.
fn produce_numbered(
    producer: &rdkafka::producer::BaseProducer,
    topic: &str,
    partition: i32,
    range: std::ops::Range<usize>,
    at_ms: i64,
) {
    for i in range {
        let key = format!("k{i}");
        let value = format!("{{\"n\":{i}}}");
        let n = i.to_string();
        let record = BaseRecord::to(topic)
            .partition(partition)
            .key(&key)
            .payload(&value)
            .timestamp(at_ms)
            .headers(OwnedHeaders::new().insert(Header {
                key: "n",
                value: Some(&n),
            }));
        producer.send(record).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn tail_prints_where_each_record_is_and_starts_at_an_offset_a_time_or_a_partition() {
    let brokers = brokers();
    let topic = unique("tail");
    create_topic(&brokers, &topic, 2).await;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let hour = 3_600_000;
    let producer = producer(&brokers);
    // Partition 0: records 0..3 two hours ago, 3..6 one hour ago; partition 1: 6..8, now.
    produce_numbered(&producer, &topic, 0, 0..3, now_ms - 2 * hour);
    produce_numbered(&producer, &topic, 0, 3..6, now_ms - hour);
    produce_numbered(&producer, &topic, 1, 6..8, now_ms);

    let tail = |extra: &[&str], max: usize| {
        let mut command = zoomstream(&["tail", &topic, "--brokers", &brokers, "--max"]);
        command.arg(max.to_string()).args(extra);
        let output = run_to_end(&mut command, Duration::from_secs(60));
        assert!(output.status.success(), "{}", text(&output.stderr));
        json_lines(&output)
    };
    let at = |lines: &[Value]| -> Vec<(i64, i64)> {
        lines
            .iter()
            .map(|l| {
                (
                    l["partition"].as_i64().unwrap(),
                    l["offset"].as_i64().unwrap(),
                )
            })
            .collect()
    };

    let from_offset = tail(&["--partition", "0", "--offset", "4"], 2);
    assert_eq!(at(&from_offset), [(0, 4), (0, 5)]);
    let line = &from_offset[0];
    assert_eq!(line["key"], "k4", "{line}");
    assert_eq!(line["headers"]["n"], "4", "{line}");
    assert_eq!(line["value"]["n"], 4, "{line}");
    assert_eq!(line["timestamp"], now_ms - hour, "{line}");

    let one_partition = tail(&["--partition", "1", "--from-beginning"], 2);
    assert_eq!(at(&one_partition), [(1, 0), (1, 1)]);
    assert_eq!(one_partition[1]["key"], "k7");

    // 90 minutes ago: the hour-old records of partition 0 and all of partition 1.
    let mut since = tail(&["--since", "90m"], 5);
    since.sort_by_key(|l| (l["partition"].as_i64(), l["offset"].as_i64()));
    assert_eq!(at(&since), [(0, 3), (0, 4), (0, 5), (1, 0), (1, 1)]);
    let an_hour_and_a_half_ago =
        time::OffsetDateTime::from_unix_timestamp((now_ms - 3 * hour / 2) / 1000)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
    let since_rfc3339 = tail(&["--partition", "0", "--since", &an_hour_and_a_half_ago], 3);
    assert_eq!(at(&since_rfc3339), [(0, 3), (0, 4), (0, 5)]);

    let missing = run_to_end(
        &mut zoomstream(&["tail", &topic, "--brokers", &brokers, "--partition", "7"]),
        Duration::from_secs(60),
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("no partition 7"),
        "{}",
        text(&missing.stderr)
    );
}

const BACKFILL_SOURCES: &str = r#"
[[source]]
name = "started"
app = "zoom"
events = ["meeting.started"]
topic = "started"
schema = "meeting.avsc"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn backfill_reports_progress_and_refuses_a_finished_rerun_unless_reset() {
    let brokers = brokers();
    let raw_topic = unique("raw");
    create_topic(&brokers, &raw_topic, 2).await;
    let sources = TestSources::new(BACKFILL_SOURCES);
    let config = processor_config(&brokers, &raw_topic, &sources);
    // Webhooks: three in four meeting.started (one record each), the others
    // recording.completed (not this source's, left to the main group); enough for the progress
    // to show between the first and the last line.
    const WEBHOOKS: i64 = 4000;
    let expected = produce_meeting_backlog(&brokers, &raw_topic, 0..WEBHOOKS as usize);
    let started = (WEBHOOKS as usize) * 3 / 4;
    let source_topic = &sources.source("started").topic;

    let backfill = |extra: &[&str]| {
        let mut command = zoomstream(&["backfill", "started", "--progress-every", "200ms"]);
        command
            .args(extra)
            .env("ZOOMSTREAM_KAFKA_BROKERS", &brokers)
            .env("ZOOMSTREAM_RAW_TOPIC", &raw_topic)
            .env("ZOOMSTREAM_GROUP_ID", &config.group_id)
            .env("ZOOMSTREAM_SOURCES", &sources.path)
            .env("ZOOMSTREAM_DLQ_TOPIC", &config.dlq_topic);
        run_to_end(&mut command, Duration::from_secs(120))
    };

    let began = std::time::Instant::now();
    let first = backfill(&[]);
    let took = began.elapsed();
    let stdout = text(&first.stdout);
    assert!(first.status.success(), "{stdout}\n{}", text(&first.stderr));
    // Progress lines: from nothing read to everything, never going back.
    let totals: Vec<(String, i64)> = stdout
        .lines()
        .map(|line| {
            let rest = line
                .strip_prefix("backfill started: ")
                .unwrap_or_else(|| panic!("not a progress line: {line}\n{stdout}"));
            let (state, rest) = rest.split_once(' ').unwrap();
            let read = rest.split_once('/').unwrap().0.parse().unwrap();
            (state.to_owned(), read)
        })
        .collect();
    assert_eq!(
        totals.first(),
        Some(&("starting".to_owned(), 0)),
        "{stdout}"
    );
    assert_eq!(
        totals.last(),
        Some(&("finished".to_owned(), WEBHOOKS)),
        "{stdout}"
    );
    assert!(totals.windows(2).all(|w| w[0].1 <= w[1].1), "{stdout}");
    figures!(
        "cli backfill: {WEBHOOKS} raw records read, {started} source records written, exactly-once, in {:.1} s by `zoomstream backfill` (process start to exit); {} progress lines at --progress-every 200ms",
        took.as_secs_f64(),
        totals.len()
    );
    // The last line: every offset of both partitions read, in total and per partition.
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!(
            "backfill started: finished {WEBHOOKS}/{WEBHOOKS} (p0 "
        )),
        "{stdout}"
    );
    let per_partition: Vec<(i64, i64)> = last
        .split_once('(')
        .unwrap()
        .1
        .trim_end_matches(')')
        .split(", ")
        .map(|p| {
            let (read, end) = p.split_once(' ').unwrap().1.split_once('/').unwrap();
            (read.parse().unwrap(), end.parse().unwrap())
        })
        .collect();
    assert_eq!(per_partition.len(), 2, "{last}");
    assert!(
        per_partition.iter().all(|(read, end)| read == end),
        "{last}"
    );
    assert_eq!(
        per_partition.iter().map(|(_, end)| end).sum::<i64>(),
        WEBHOOKS
    );
    assert_eq!(read_all(&brokers, source_topic).len(), started);

    // Again: refused, with the command that does it, and nothing written.
    let again = backfill(&[]);
    let stderr = text(&again.stderr);
    assert_eq!(
        again.status.code(),
        Some(1),
        "{}\n{stderr}",
        text(&again.stdout)
    );
    assert!(stderr.contains("already finished"), "{stderr}");
    assert!(
        stderr.contains("zoomstream backfill started --reset"),
        "{stderr}"
    );
    assert_eq!(read_all(&brokers, source_topic).len(), started);

    // With --reset: from the beginning once more.
    let reset = backfill(&["--reset"]);
    let stdout = text(&reset.stdout);
    assert!(reset.status.success(), "{stdout}\n{}", text(&reset.stderr));
    assert!(
        stdout.contains("reset, starting from the beginning"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .last()
            .unwrap_or_default()
            .starts_with(&format!(
                "backfill started: finished {WEBHOOKS}/{WEBHOOKS} "
            )),
        "{stdout}"
    );
    assert_eq!(read_all(&brokers, source_topic).len(), 2 * started);

    // What the backfill wrote, through tail: decoded, with where each record is.
    let mut command = zoomstream(&[
        "tail",
        source_topic,
        "--brokers",
        &brokers,
        "--from-beginning",
        "--max",
        "1",
        "--sources",
    ]);
    command.arg(&sources.path);
    let tailed = run_to_end(&mut command, Duration::from_secs(60));
    assert!(tailed.status.success(), "{}", text(&tailed.stderr));
    let line = &json_lines(&tailed)[0];
    assert!(
        line["partition"].is_i64() && line["offset"].is_i64(),
        "{line}"
    );
    assert_eq!(line["headers"]["zoomstream-source"], "started", "{line}");
    assert_eq!(line["value"]["event"], "meeting.started", "{line}");
    assert!(
        expected.contains(line["value"]["event_id"].as_str().unwrap()),
        "{line}"
    );
}
