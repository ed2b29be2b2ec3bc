//! Processors as real processes, killed, restarted, added and removed: one process SIGKILLed
//! at random points while draining a backlog and while live webhooks arrive through ingest;
//! 2–3 processes splitting the raw topic with one SIGKILLed mid-stream and one joining; a
//! rebalance storm of processes joining and leaving. Afterwards a read_committed reader finds
//! every expected source record; in exactly-once mode each exactly once, in at-least-once mode
//! any duplicate carries its original's event id.
//!
//! Killed processes restart under their own identity (`ZOOMSTREAM_INSTANCE_ID`), as compose
//! restarts a replica: the new producer fences the dangling transaction at once, and the static
//! member gets its partitions back without a rebalance.

use std::time::Duration;

use zoomstream_processors::Delivery;
use zoomstream_tests::*;

const SECRET: &str = "processes-secret";

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_points_loses_nothing_and_exactly_once_duplicates_nothing() {
    for delivery in [Delivery::ExactlyOnce, Delivery::AtLeastOnce] {
        let setup = PipelineUnderTest::new(&brokers(), delivery, 1).await;
        let mut rng = Lcg::seeded();
        let mut expected = produce_meeting_backlog(&setup.brokers, &setup.raw_topic, 0..1200);
        // Live webhooks arrive through a real ingest while the processor is being killed.
        let mut config = ingest_config(&setup.brokers, &setup.raw_topic, SECRET);
        config.topic_creation.create = false;
        let ingest = IngestApp::start(config).await;
        ingest.wait_ready(&reqwest::Client::new()).await;
        let live = tokio::spawn({
            let url = ingest.url("/webhooks/zoom");
            async move { post_meetings(&url, SECRET, 0..200, Duration::from_millis(15)).await }
        });

        let started = std::time::Instant::now();
        let mut kills = 0;
        let mut processor = ProcessorProcess::spawn(&setup.config, "crashy");
        for _ in 0..5 {
            // Let it consume a random amount, then SIGKILL it mid-batch and restart it.
            let target = 1.0 + rng.below(200) as f64;
            wait_for("some progress", Duration::from_secs(60), || async {
                processor.records_in() >= target
            })
            .await;
            processor.kill();
            kills += 1;
            processor = ProcessorProcess::spawn(&setup.config, "crashy");
            eprintln!("{:?}: killed at {target} records", started.elapsed());
        }
        expected.extend(live.await.unwrap());
        setup.drain(1400, Duration::from_secs(180));
        eprintln!("{:?}: processed", started.elapsed());
        let audit = setup.audit(&expected);
        assert_eq!(
            audit.missing, 0,
            "{delivery:?}: every expected record exists after {kills} kills: {audit:?}"
        );
        if delivery == Delivery::ExactlyOnce {
            assert_eq!(
                audit.duplicates, 0,
                "exactly-once: no record twice after {kills} kills: {audit:?}"
            );
        }
        assert_eq!(setup.dead_letters(), 0);
        figures!(
            "crashes ({delivery:?}): 1200 backlog + 200 live webhooks, {kills} SIGKILLs survived, {} source records expected, {} found, {} duplicates (same event ids)",
            audit.expected, audit.found, audit.duplicates
        );
        ingest.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rebalance_storm_loses_nothing() {
    let setup = PipelineUnderTest::new(&brokers(), Delivery::ExactlyOnce, 1).await;
    let mut expected = produce_meeting_backlog(&setup.brokers, &setup.raw_topic, 0..400);
    let mut members = vec![
        ProcessorProcess::spawn_dynamic(&setup.config, "m0"),
        ProcessorProcess::spawn_dynamic(&setup.config, "m1"),
    ];
    let mut changes = 0;
    for round in 0..6 {
        // One leaves gracefully (SIGTERM: commits its batch, leaves the group — a dynamic
        // member, as under autoscaling), one joins; more raw records arrive meanwhile.
        let mut leaving = members.remove(0);
        wait_for(
            "the leaving member to be up",
            Duration::from_secs(60),
            || async { leaving.metrics().is_some() },
        )
        .await;
        let status = leaving.terminate();
        assert!(status.success(), "a graceful leave exits 0: {status}");
        members.push(ProcessorProcess::spawn_dynamic(
            &setup.config,
            &format!("m{}", round + 2),
        ));
        changes += 2;
        expected.extend(produce_meeting_backlog(
            &setup.brokers,
            &setup.raw_topic,
            400 + round * 100..500 + round * 100,
        ));
        // No settling between rounds: the next change lands while the group may still be
        // rebalancing from this one.
    }
    setup.drain(1000, Duration::from_secs(180));
    let audit = setup.audit(&expected);
    assert_eq!(
        audit.missing, 0,
        "every expected record exists after the storm: {audit:?}"
    );
    assert_eq!(
        audit.duplicates, 0,
        "exactly-once through the storm: {audit:?}"
    );
    figures!("rebalance storm: 1000 raw records, {changes} membership changes, {} source records all present, {} duplicates", audit.expected, audit.duplicates);
}

/// Feeds the raw topic 30 new records at a time until `condition` holds: a processor that
/// joins after the others drained everything gets work only from new records.
fn feed_until(
    setup: &PipelineUnderTest,
    next: &mut usize,
    expected: &mut std::collections::HashSet<String>,
    what: &str,
    condition: impl Fn() -> bool,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        expected.extend(produce_meeting_backlog(
            &setup.brokers,
            &setup.raw_topic,
            *next..*next + 30,
        ));
        *next += 30;
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn processors_split_the_work_survive_a_sigkill_and_a_joiner_and_lose_nothing() {
    let setup = PipelineUnderTest::new(&brokers(), Delivery::ExactlyOnce, 1).await;
    let (brokers, raw_topic, config) = (&setup.brokers, &setup.raw_topic, &setup.config);
    let mut expected = produce_meeting_backlog(brokers, raw_topic, 0..300);
    let mut next = 300;

    let mut first = ProcessorProcess::spawn(config, "p1");
    let second = ProcessorProcess::spawn(config, "p2");
    feed_until(
        &setup,
        &mut next,
        &mut expected,
        "both processors consuming",
        || first.records_in() > 0.0 && second.records_in() > 0.0,
    );
    first.kill();

    expected.extend(produce_meeting_backlog(
        brokers,
        raw_topic,
        next..next + 300,
    ));
    next += 300;
    let third = ProcessorProcess::spawn(config, "p3");
    feed_until(
        &setup,
        &mut next,
        &mut expected,
        "the joiner to take partitions",
        || third.records_in() > 0.0,
    );
    let _restarted = ProcessorProcess::spawn(config, "p1");
    expected.extend(produce_meeting_backlog(
        brokers,
        raw_topic,
        next..next + 300,
    ));
    next += 300;

    setup.drain(next, Duration::from_secs(120));
    let audit = setup.audit(&expected);
    assert_eq!(audit.missing, 0, "every expected record exists: {audit:?}");
    assert_eq!(
        audit.duplicates, 0,
        "exactly-once across the kill: {audit:?}"
    );
    assert_eq!(setup.dead_letters(), 0, "no dead letters");
    figures!("scale: {next} raw records, 3 processes, 1 SIGKILL, {} source records all present, {} duplicates", audit.expected, audit.duplicates);
}
