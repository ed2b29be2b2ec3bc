//! Processors as real processes, killed, restarted, added and removed: 2–3 processes splitting
//! the raw topic with one SIGKILLed mid-stream and one joining; one process SIGKILLed at random
//! points while draining a backlog and restarted; a rebalance storm of processes joining and
//! leaving. Afterwards every expected source record exists, and every record carries the event
//! id of a raw record (so any duplicate is recognisable).
//!
//! On Apache Kafka, transactions leave no duplicates at all; nisshi shows aborted records to
//! read_committed readers (../shared/broker.md), so here duplicates may appear and are counted.
//! Killed processes restart under their own transactional id, as a supervisor restarts a
//! container: that fences their dangling transaction at once. Without the restart Kafka aborts
//! it after `transaction.timeout.ms`; nisshi never does, and holds the group's transactional
//! offset commits behind it.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zoomstream_processors::{Config, Delivery};
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

/// A small deterministic generator, seeded from the clock and printed, so a failing run can be
/// replayed by setting ZOOMSTREAM_TEST_SEED.
struct Lcg(u64);

impl Lcg {
    fn seeded() -> Lcg {
        let seed = std::env::var("ZOOMSTREAM_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("ZOOMSTREAM_TEST_SEED={seed}");
        Lcg(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

struct Setup {
    brokers: String,
    raw_topic: String,
    sources: TestSources,
    config: Config,
}

async fn setup(delivery: Delivery) -> Setup {
    let brokers = brokers();
    let raw_topic = unique("raw");
    create_topic(&brokers, &raw_topic, 6).await;
    let sources = TestSources::new(SOURCES);
    let mut config = processor_config(&brokers, &raw_topic, &sources);
    config.delivery = delivery;
    config.batch_max_records = 25;
    config.batch_max_ms = 20;
    for source in &sources.file.sources {
        create_topic(&brokers, &source.topic, 6).await;
    }
    create_topic(&brokers, &config.dlq_topic, 1).await;
    Setup {
        brokers,
        raw_topic,
        sources,
        config,
    }
}

/// Reads every source topic; checks each record's event id against `expected` and returns
/// (missing, duplicates).
fn audit(setup: &Setup, expected: &HashSet<String>) -> (usize, usize) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for source in &setup.sources.file.sources {
        for record in read_all(&setup.brokers, &source.topic) {
            let value = decode(&record, &source.schema);
            let id = value["event_id"].as_str().unwrap().to_owned();
            assert_eq!(
                record.header("zoomstream-event-id").as_deref(),
                Some(id.as_str()),
                "header and value agree"
            );
            assert!(
                expected.contains(&id),
                "{}: a record no raw record explains: {value}",
                source.name
            );
            *seen.entry(id).or_default() += 1;
        }
    }
    let missing = expected.iter().filter(|id| !seen.contains_key(*id)).count();
    (missing, seen.values().map(|n| n - 1).sum())
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_points_loses_nothing() {
    for delivery in [Delivery::ExactlyOnce, Delivery::AtLeastOnce] {
        let setup = setup(delivery).await;
        let mut rng = Lcg::seeded();
        let expected = produce_meeting_backlog(&setup.brokers, &setup.raw_topic, 0..1200);
        let raw = read_topic_until(
            &setup.brokers,
            &setup.raw_topic,
            Duration::from_secs(60),
            |r| r.len() == 1200,
        );

        let started = std::time::Instant::now();
        let mut kills = 0;
        let mut processor = ProcessorProcess::spawn(&setup.config, "crashy");
        for _ in 0..4 {
            // Let it consume a random amount, then SIGKILL it mid-batch and restart it.
            let target = 1.0 + rng.below(150) as f64;
            wait_for("some progress", Duration::from_secs(60), || async {
                processor.records_in() >= target
            })
            .await;
            processor.kill();
            kills += 1;
            processor = ProcessorProcess::spawn(&setup.config, "crashy");
            eprintln!("{:?}: killed at {target} records", started.elapsed());
        }
        wait_processed(
            &setup.brokers,
            &setup.config.group_id,
            &setup.raw_topic,
            &raw,
            Duration::from_secs(180),
        );
        eprintln!("{:?}: processed", started.elapsed());
        let (missing, duplicates) = audit(&setup, &expected);
        assert_eq!(
            missing, 0,
            "{delivery:?}: every expected record exists after {kills} kills"
        );
        assert!(read_all(&setup.brokers, &setup.config.dlq_topic).is_empty());
        eprintln!("crashes ({delivery:?}): 1200 raw records, {kills} SIGKILLs survived, {} source records all present, {duplicates} duplicates (same event ids)", expected.len());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rebalance_storm_loses_nothing() {
    let setup = setup(Delivery::ExactlyOnce).await;
    let mut expected = produce_meeting_backlog(&setup.brokers, &setup.raw_topic, 0..400);
    let mut members = vec![
        ProcessorProcess::spawn(&setup.config, "m0"),
        ProcessorProcess::spawn(&setup.config, "m1"),
    ];
    let mut changes = 0;
    for round in 0..6 {
        // One leaves gracefully (SIGTERM: commits its batch, leaves the group), one joins; more
        // raw records arrive meanwhile.
        let mut leaving = members.remove(0);
        wait_for(
            "the leaving member to be up",
            Duration::from_secs(60),
            || async { leaving.metrics().is_some() },
        )
        .await;
        let status = leaving.terminate();
        assert!(status.success(), "a graceful leave exits 0: {status}");
        members.push(ProcessorProcess::spawn(
            &setup.config,
            &format!("m{}", round + 2),
        ));
        changes += 2;
        expected.extend(produce_meeting_backlog(
            &setup.brokers,
            &setup.raw_topic,
            400 + round * 100..500 + round * 100,
        ));
        // Each change settles (the joiner gets partitions and consumes) before the next: nisshi's
        // group coordinator was seen to stop assigning partitions at all when members left
        // while a join was still pending.
        let joiner = members.last().unwrap();
        wait_for("the joiner to consume", Duration::from_secs(60), || async {
            joiner.records_in() > 0.0
        })
        .await;
    }
    let raw = read_topic_until(
        &setup.brokers,
        &setup.raw_topic,
        Duration::from_secs(60),
        |r| r.len() == 1000,
    );
    wait_processed(
        &setup.brokers,
        &setup.config.group_id,
        &setup.raw_topic,
        &raw,
        Duration::from_secs(180),
    );
    let (missing, duplicates) = audit(&setup, &expected);
    assert_eq!(missing, 0, "every expected record exists after the storm");
    eprintln!("rebalance storm: 1000 raw records, {changes} membership changes, {} source records all present, {duplicates} duplicates (same event ids)", expected.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn processors_split_the_work_survive_a_sigkill_and_a_joiner_and_lose_nothing() {
    let setup = setup(Delivery::ExactlyOnce).await;
    let (brokers, raw_topic, config) = (&setup.brokers, &setup.raw_topic, &setup.config);
    let mut expected = produce_meeting_backlog(brokers, raw_topic, 0..300);

    let mut first = ProcessorProcess::spawn(config, "p1");
    let second = ProcessorProcess::spawn(config, "p2");
    wait_for(
        "the first processor to be consuming",
        Duration::from_secs(60),
        || async { first.records_in() > 0.0 },
    )
    .await;
    first.kill();

    expected.extend(produce_meeting_backlog(brokers, raw_topic, 300..600));
    let third = ProcessorProcess::spawn(config, "p3");
    wait_for(
        "the joiner to take partitions",
        Duration::from_secs(60),
        || async { third.records_in() > 0.0 },
    )
    .await;
    let _restarted = ProcessorProcess::spawn(config, "p1");
    expected.extend(produce_meeting_backlog(brokers, raw_topic, 600..900));

    let raw = read_topic_until(brokers, raw_topic, Duration::from_secs(60), |r| {
        r.len() == 900
    });
    wait_processed(
        brokers,
        &config.group_id,
        raw_topic,
        &raw,
        Duration::from_secs(120),
    );
    assert!(
        second.records_in() > 0.0,
        "the second processor took a share"
    );
    let (missing, duplicates) = audit(&setup, &expected);
    assert_eq!(missing, 0, "every expected record exists");
    assert!(
        read_all(brokers, &config.dlq_topic).is_empty(),
        "no dead letters"
    );
    eprintln!("scale: 900 raw records, 3 processes, 1 SIGKILL, {} source records all present, {duplicates} duplicates (same event ids)", expected.len());
}
