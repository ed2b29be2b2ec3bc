//! Delivery promises that rest on Apache Kafka's group and transaction protocols: a zombie
//! processor cannot commit after its partitions moved, a processor killed for good holds
//! read_committed readers up no longer than its transaction timeout, a restarted static member
//! gets its partitions back at once, and the lag metric is end offsets minus committed offsets.

use std::time::{Duration, Instant};

use zoomstream_processors::Delivery;
use zoomstream_tests::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_zombie_processor_cannot_commit_its_stale_transaction() {
    let mut setup = PipelineUnderTest::new(&brokers(), Delivery::ExactlyOnce, 1).await;
    // Batches stay open long enough that the pause lands inside a transaction.
    setup.config.batch_max_ms = 1000;
    let mut expected = produce_meeting_backlog(&setup.brokers, &setup.raw_topic, 0..400);
    let mut zombie = ProcessorProcess::spawn(&setup.config, "zombie");
    wait_for(
        "the first processor to consume",
        Duration::from_secs(60),
        || async { zombie.records_in() > 0.0 },
    )
    .await;
    let zombie_in = zombie.records_in();
    zombie.signal("STOP");

    // Its session expires; the other takes every partition and drains the backlog plus more.
    let survivor = ProcessorProcess::spawn(&setup.config, "survivor");
    expected.extend(produce_meeting_backlog(
        &setup.brokers,
        &setup.raw_topic,
        400..600,
    ));
    setup.drain(600, Duration::from_secs(120));

    // The zombie wakes up with an open transaction for partitions it no longer owns.
    zombie.signal("CONT");
    expected.extend(produce_meeting_backlog(
        &setup.brokers,
        &setup.raw_topic,
        600..800,
    ));
    setup.drain(800, Duration::from_secs(120));
    // It either rejoined (and serves metrics again) or exited; it never committed the stale batch.
    let outcome = match zombie.exited() {
        Some(status) => format!("exited ({status})"),
        None => {
            wait_for(
                "the zombie to answer again",
                Duration::from_secs(30),
                || async { zombie.metrics().is_some() },
            )
            .await;
            "rejoined".to_owned()
        }
    };
    let audit = setup.audit(&expected);
    assert_eq!(audit.missing, 0, "nothing lost: {audit:?}");
    assert_eq!(
        audit.duplicates, 0,
        "the zombie's stale transaction committed nothing: {audit:?}"
    );
    assert!(survivor.records_in() > 0.0);
    let aborted = zombie.metric(r#"zoomstream_processor_batches_total{outcome="aborted"}"#);
    figures!(
        "zombie: SIGSTOPped after {zombie_in} records, partitions moved, SIGCONT: {outcome}, {aborted} batches aborted; {} expected, {} found, {} duplicates",
        audit.expected, audit.found, audit.duplicates
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_processor_killed_for_good_holds_readers_up_no_longer_than_its_transaction_timeout() {
    const TRANSACTION_TIMEOUT_MS: u64 = 10_000;
    let mut setup = PipelineUnderTest::new(&brokers(), Delivery::ExactlyOnce, 1).await;
    setup.config.kafka.options.push((
        "transaction.timeout.ms".into(),
        TRANSACTION_TIMEOUT_MS.to_string(),
    ));
    // One long batch: the kill lands inside an open transaction with records written.
    setup.config.batch_max_ms = 60_000;
    setup.config.batch_max_records = 1_000_000;
    let mut expected = produce_meeting_backlog(&setup.brokers, &setup.raw_topic, 0..300);
    let mut doomed = ProcessorProcess::spawn_dynamic(&setup.config, "doomed");
    wait_for(
        "the whole backlog in its open batch",
        Duration::from_secs(60),
        || async { doomed.records_in() >= 300.0 },
    )
    .await;
    doomed.kill();
    let killed = Instant::now();

    // Another process (another transactional id: nothing fences the dead one's transaction)
    // takes over with normal batches.
    setup.config.batch_max_ms = 20;
    setup.config.batch_max_records = 25;
    let _heir = ProcessorProcess::spawn_dynamic(&setup.config, "heir");
    expected.extend(produce_meeting_backlog(
        &setup.brokers,
        &setup.raw_topic,
        300..400,
    ));
    setup.drain(400, Duration::from_secs(120));
    let audit = setup.audit(&expected);
    let held = killed.elapsed();
    assert_eq!(audit.missing, 0, "nothing lost: {audit:?}");
    assert_eq!(
        audit.duplicates, 0,
        "the dead transaction was aborted, not committed: {audit:?}"
    );
    // Kafka aborts the dead transaction after its timeout; the session timeout (6 s), the
    // abort sweep (2 s) and the heir's start-up come on top.
    let bound = Duration::from_millis(TRANSACTION_TIMEOUT_MS) + Duration::from_secs(30);
    assert!(
        held < bound,
        "readers were held up {held:?}, more than the transaction timeout allows ({bound:?})"
    );
    figures!(
        "transaction timeout: processor SIGKILLed inside a 300-record transaction and never restarted; everything readable {held:?} after the kill (transaction.timeout.ms={TRANSACTION_TIMEOUT_MS}); {} expected, {} found, {} duplicates",
        audit.expected, audit.found, audit.duplicates
    );
}

/// SIGKILLs one of two processors and restarts it at once; how long until records produced
/// after the restart, on every partition, are processed.
async fn restart_to_reassignment(stable_identity: bool) -> Duration {
    let mut setup = PipelineUnderTest::new(&brokers(), Delivery::AtLeastOnce, 1).await;
    setup.use_default_session_timeout();
    let spawn = |name: &str| {
        if stable_identity {
            ProcessorProcess::spawn(&setup.config, name)
        } else {
            ProcessorProcess::spawn_dynamic(&setup.config, name)
        }
    };
    let mut first = spawn("first");
    let second = spawn("second");
    // Records until both have joined and taken a share.
    let mut produced = 0;
    while first.records_in() == 0.0 || second.records_in() == 0.0 {
        assert!(
            produced < 6000,
            "both processors consume within {produced} records"
        );
        produce_meeting_backlog(&setup.brokers, &setup.raw_topic, produced..produced + 60);
        produced += 60;
        setup.drain(produced, Duration::from_secs(120));
    }

    first.kill();
    let restarted = Instant::now();
    let _first = spawn("first");
    produce_meeting_backlog(&setup.brokers, &setup.raw_topic, produced..produced + 120);
    setup.drain(produced + 120, Duration::from_secs(120));
    restarted.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_static_member_gets_its_partitions_back_without_waiting_for_its_session() {
    const SESSION_TIMEOUT: Duration = Duration::from_secs(45);
    let (static_member, dynamic_member) = tokio::join!(
        restart_to_reassignment(true),
        restart_to_reassignment(false)
    );
    assert!(
        static_member < SESSION_TIMEOUT,
        "a static member restarted under its id resumes before its session expires: {static_member:?}"
    );
    figures!(
        "static membership: SIGKILL + immediate restart, every partition processing again after {static_member:?} with ZOOMSTREAM_INSTANCE_ID, {dynamic_member:?} without (session.timeout.ms=45000)"
    );
}

/// End offsets minus the group's committed offsets of `topic`, summed over its partitions.
fn lag_from_kafka(brokers: &str, group: &str, topic: &str, partitions: i32) -> i64 {
    let offsets = GroupOffsets::new(brokers, group);
    offsets
        .committed(topic, 0..partitions)
        .into_iter()
        .map(|(p, at)| offsets.end_offset(topic, p) - at.unwrap_or(0))
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lag_metric_is_end_offsets_minus_committed_offsets() {
    let mut setup = PipelineUnderTest::new(&brokers(), Delivery::ExactlyOnce, 1).await;
    let lag_metric = "zoomstream_processor_consumer_lag_records";
    // First a processed stretch, so the group has committed offsets on every partition.
    produce_meeting_backlog(&setup.brokers, &setup.raw_topic, 0..120);
    let mut first = ProcessorProcess::spawn(&setup.config, "lag");
    setup.drain(120, Duration::from_secs(120));
    assert!(first.terminate().success());

    // A known backlog, read into one batch that stays open: nothing is committed for a while.
    produce_meeting_backlog(&setup.brokers, &setup.raw_topic, 120..420);
    setup.config.batch_max_ms = 20_000;
    setup.config.batch_max_records = 1_000_000;
    let processor = ProcessorProcess::spawn(&setup.config, "lag");
    let (brokers, group, raw) = (&setup.brokers, &setup.config.group_id, &setup.raw_topic);
    assert_eq!(lag_from_kafka(brokers, group, raw, 6), 300);
    wait_for(
        "the lag metric to show the backlog",
        Duration::from_secs(30),
        || async { processor.metric(lag_metric) == 300.0 },
    )
    .await;
    assert_eq!(
        lag_from_kafka(brokers, group, raw, 6),
        300,
        "nothing was committed meanwhile"
    );
    // Once the batch commits, both say 0.
    setup.drain(420, Duration::from_secs(60));
    assert_eq!(lag_from_kafka(brokers, group, raw, 6), 0);
    wait_for(
        "the lag metric to reach 0",
        Duration::from_secs(30),
        || async { processor.metric(lag_metric) == 0.0 },
    )
    .await;
    figures!(
        "consumer lag (exactly-once): a 300-record backlog read into an open batch: metric 300 = end - committed 300; after the commit: metric 0 = end - committed 0"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_processor_fenced_as_a_static_member_exits_instead_of_stalling() {
    // At-least-once: no transactional id, so only the group fences the older twin.
    let setup = PipelineUnderTest::new(&brokers(), Delivery::AtLeastOnce, 1).await;
    let mut expected = produce_meeting_backlog(&setup.brokers, &setup.raw_topic, 0..100);
    let mut older = ProcessorProcess::spawn(&setup.config, "twin");
    wait_for(
        "the first twin to consume",
        Duration::from_secs(60),
        || async { older.records_in() > 0.0 },
    )
    .await;
    // A second process with the same identity (a misconfigured replica, or a supervisor that
    // restarted a process it wrongly thought dead) fences the first one's group membership.
    let _newer = ProcessorProcess::spawn(&setup.config, "twin");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = older.exited() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the fenced processor neither exited nor failed within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        !status.success(),
        "a fenced member exits with a failure: {status}"
    );
    expected.extend(produce_meeting_backlog(
        &setup.brokers,
        &setup.raw_topic,
        100..200,
    ));
    setup.drain(200, Duration::from_secs(120));
    let audit = setup.audit(&expected);
    assert_eq!(audit.missing, 0, "the newer twin carries on: {audit:?}");
    figures!(
        "fenced static member: the older of two processors with one ZOOMSTREAM_INSTANCE_ID exited ({status}); {} expected, {} found, {} duplicates",
        audit.expected, audit.found, audit.duplicates
    );
}
