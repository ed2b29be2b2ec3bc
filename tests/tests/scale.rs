//! Horizontal scale with the real binaries: processors in one group split the raw topic; one
//! is SIGKILLed mid-stream and another joins; the union of the outputs has every expected
//! record, and every duplicate carries the event id of its original.
//!
//! On Apache Kafka the killed process's open transaction is aborted and read_committed readers
//! never see its records, so there are no duplicates at all; nisshi does not hide aborted
//! records (../shared/broker.md), so here duplicates may appear and are checked by event id.
//!
//! The killed process is restarted under its own transactional id, as a supervisor restarts a
//! container: that fences its dangling transaction at once. Without the restart, Kafka aborts
//! the dangling transaction after `transaction.timeout.ms`; nisshi never does, and holds the
//! group's transactional offset commits behind it.

use std::collections::HashMap;
use std::time::Duration;

use zoomstream_tests::*;

const SOURCES: &str = r#"
[[source]]
name = "started"
app = "zoom"
events = ["meeting.started"]
topic = "started"
schema = "meeting.avsc"

[[source]]
name = "recordings"
app = "zoom"
events = ["recording.completed"]
topic = "recordings"
schema = "recording_file.avsc"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn processors_split_the_work_survive_a_sigkill_and_a_joiner_and_lose_nothing() {
    let brokers = brokers();
    let raw_topic = unique("raw");
    create_topic(&brokers, &raw_topic, 6).await;
    let sources = TestSources::new(SOURCES);
    let mut config = processor_config(&brokers, &raw_topic, &sources);
    // Small transactions, so the kill lands mid-stream.
    config.batch_max_records = 10;
    config.batch_max_ms = 20;
    // Topics exist before the processes race to create them.
    for source in &sources.file.sources {
        create_topic(&brokers, &source.topic, 6).await;
    }
    create_topic(&brokers, &config.dlq_topic, 1).await;

    let mut expected = produce_meeting_backlog(&brokers, &raw_topic, 0..300);

    let mut first = ProcessorProcess::spawn(&config, "p1");
    let second = ProcessorProcess::spawn(&config, "p2");
    wait_for("the first processor to be consuming", Duration::from_secs(60), || async { first.records_in() > 0.0 }).await;
    first.kill();

    expected.extend(produce_meeting_backlog(&brokers, &raw_topic, 300..600));
    let third = ProcessorProcess::spawn(&config, "p3");
    wait_for("the joiner to take partitions", Duration::from_secs(60), || async { third.records_in() > 0.0 }).await;
    let _restarted = ProcessorProcess::spawn(&config, "p1");
    expected.extend(produce_meeting_backlog(&brokers, &raw_topic, 600..900));

    let raw = read_topic_until(&brokers, &raw_topic, Duration::from_secs(60), |r| r.len() == 900);
    wait_processed(&brokers, &config.group_id, &raw_topic, &raw, Duration::from_secs(120));
    assert!(second.records_in() > 0.0, "the second processor took a share");

    let mut seen: HashMap<String, usize> = HashMap::new();
    for source in &sources.file.sources {
        for record in read_all(&brokers, &source.topic) {
            let value = decode(&record, &source.schema);
            let id = value["event_id"].as_str().unwrap().to_owned();
            assert_eq!(record.header("zoomstream-event-id").as_deref(), Some(id.as_str()));
            assert!(expected.contains(&id), "{} has a record no raw record explains: {value}", source.name);
            *seen.entry(id).or_default() += 1;
        }
    }
    let missing: Vec<&String> = expected.iter().filter(|id| !seen.contains_key(*id)).collect();
    assert!(missing.is_empty(), "{} of {} expected records missing", missing.len(), expected.len());
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    eprintln!("{} records expected, all present; {duplicates} duplicates, each with its original's event id", expected.len());
    assert!(read_all(&brokers, &config.dlq_topic).is_empty(), "no dead letters");
}
