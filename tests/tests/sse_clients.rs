//! SSE clients under load: one that reads nothing is cut off while a fast one keeps
//! receiving; 200 clients of one source get the same events from one Kafka consumer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use zoomstream_tests::*;

mod sse_support;
use sse_support::*;

/// A raw HTTP/1.0 client with a tiny receive buffer, to play a client that stops reading.
struct RawClient {
    stream: tokio::net::TcpStream,
    parser: Parser,
    items: Vec<Item>,
}

impl RawClient {
    async fn connect(addr: SocketAddr, path: &str) -> RawClient {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut stream = socket.connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.0\r\nhost: {addr}\r\nauthorization: Bearer {TOKEN}\r\naccept: text/event-stream\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut client = RawClient {
            stream,
            parser: Parser::default(),
            items: Vec::new(),
        };
        // The head, then the body up to `: live`.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0];
            client
                .stream
                .read_exact(&mut byte)
                .await
                .expect("response head");
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(
            head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
            "{head}"
        );
        while !client.items.contains(&Item::Comment("live".into())) {
            assert!(
                client.read_some(Duration::from_secs(30)).await,
                "the stream ended before going live"
            );
        }
        client
    }

    /// Reads what is there; false at the end of the stream (or a reset connection).
    async fn read_some(&mut self, timeout: Duration) -> bool {
        let mut buf = vec![0; 64 * 1024];
        match tokio::time::timeout(timeout, self.stream.read(&mut buf))
            .await
            .expect("data or the end in time")
        {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                let items = self.parser.feed(&buf[..n]);
                self.items.extend(items);
                true
            }
        }
    }

    fn events(&self) -> Vec<SseEvent> {
        self.items
            .iter()
            .filter_map(|i| match i {
                Item::Event(e) => Some(e.clone()),
                _ => None,
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_reads_nothing_is_cut_off_while_a_fast_one_keeps_receiving() {
    let (sources, source, producer) = direct_setup(1).await;
    let mut config = sse_config(&sources);
    config.client_buffer = 32;
    config.slow_client_timeout_ms = 5_000;
    let sse = SseApp::start(config).await;
    let path = "/sources/meeting-started/events";

    let mut fast = SseClient::connect(TOKEN, &sse.events_url("meeting-started"), None).await;
    fast.wait_live().await;
    // `slow` stops reading for a while, then reads again; `stuck` never reads again.
    let mut slow = RawClient::connect(sse.addr, path).await;
    let mut stuck = RawClient::connect(sse.addr, path).await;

    // The fast client reads everything as it comes.
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        loop {
            match fast.next(Duration::from_secs(120)).await {
                Some(Item::Event(event)) => {
                    if seen_tx.send(event).is_err() {
                        return;
                    }
                }
                Some(_) => {}
                None => panic!("the fast client's stream ended"),
            }
        }
    });

    let metrics_url = sse.url("/metrics");
    let slow_disconnects = move || {
        let url = metrics_url.clone();
        async move {
            let page = reqwest::get(url)
                .await
                .expect("metrics")
                .text()
                .await
                .unwrap();
            sample(
                &page,
                "zoomstream_sse_disconnects_total",
                &[("source", "meeting-started"), ("reason", "slow_client")],
            )
        }
    };
    // The slow client reads again as soon as the service found both silent clients slow (well
    // within the slow-client timeout): what was queued for it, then the reason, then the end.
    let check = slow_disconnects.clone();
    let slow_reader = tokio::spawn(async move {
        wait_for(
            "both silent clients to be found slow",
            Duration::from_secs(120),
            || {
                let check = check.clone();
                async move { check().await >= 2.0 }
            },
        )
        .await;
        while slow.read_some(Duration::from_secs(30)).await {}
        slow
    });

    // Big records, a few at a time, until both silent clients are found slow: their socket
    // buffers, the server's and their 32-event queues fill up (a few MB), while the fast client
    // keeps pace.
    let mut ids = HashMap::new();
    let mut produced = 0;
    let mut fast_seen = Vec::new();
    while slow_disconnects().await < 2.0 {
        assert!(
            produced < 3000,
            "no client was found slow after {produced} records of 32 KB"
        );
        ids.extend(produce_meetings(
            &producer,
            &source,
            produced..produced + 5,
            1,
            32 * 1024,
        ));
        produced += 5;
        while fast_seen.len() < produced {
            let event = tokio::time::timeout(Duration::from_secs(60), seen_rx.recv())
                .await
                .expect("the fast client keeps receiving")
                .unwrap();
            fast_seen.push(event);
        }
    }
    // After the slow ones were dropped the fast one still gets new records.
    ids.extend(produce_meetings(
        &producer,
        &source,
        produced..produced + 5,
        1,
        0,
    ));
    produced += 5;
    while fast_seen.len() < produced {
        let event = tokio::time::timeout(Duration::from_secs(60), seen_rx.recv())
            .await
            .expect("more events")
            .unwrap();
        fast_seen.push(event);
    }
    assert_eq!(
        seqs(&fast_seen, &ids),
        (0..produced).collect::<Vec<_>>(),
        "the fast client got every record, in order"
    );

    let slow = slow_reader.await.expect("the slow client reads to the end");
    let slow_events = slow.events();
    let farewell = slow_events.last().expect("events").clone();
    assert_eq!(
        farewell.event,
        zoomstream_sse::DISCONNECTED_EVENT,
        "the stream ends with the reason"
    );
    assert_eq!(farewell.json()["reason"], "slow_client");
    let slow_records = &slow_events[..slow_events.len() - 1];
    let got = seqs(slow_records, &ids);
    assert!(
        got.len() < produced,
        "the slow client was cut before the end ({} of {produced})",
        got.len()
    );
    assert_eq!(got, (0..got.len()).collect::<Vec<_>>());

    // ... and resumes with its last id: exactly the rest.
    let last_id = slow_records
        .last()
        .and_then(|e| e.id.clone())
        .expect("an id");
    let mut resumed =
        SseClient::connect(TOKEN, &sse.events_url("meeting-started"), Some(&last_id)).await;
    let rest = seqs(
        &resumed
            .events(produced - got.len(), Duration::from_secs(60))
            .await,
        &ids,
    );
    assert_eq!(rest, (got.len()..produced).collect::<Vec<_>>());
    drop(resumed);

    // The stuck client never read: the server cut its connection when the timeout ran out,
    // so only the fast client is left connected.
    wait_for(
        "the stuck client's connection to be cut",
        Duration::from_secs(30),
        || async {
            sample(
                &sse.metrics().await,
                "zoomstream_sse_connected_clients",
                &[("source", "meeting-started")],
            ) == 1.0
        },
    )
    .await;
    let cut = tokio::time::timeout(Duration::from_secs(30), async {
        while stuck.read_some(Duration::from_secs(30)).await {}
    })
    .await;
    assert!(cut.is_ok(), "the stuck client's socket ends");
    reader.abort();
    sse.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_clients_of_one_source_get_the_same_events_from_one_consumer() {
    const CLIENTS: usize = 200;
    const RECORDS: usize = 30;
    let (sources, source, producer) = direct_setup(3).await;
    let mut config = sse_config(&sources);
    config.consumer_idle_ms = 500;
    let sse = SseApp::start(config).await;
    let url = format!("{}?from=earliest", sse.events_url("meeting-started"));

    let mut connecting = Vec::new();
    for _ in 0..CLIENTS {
        let url = url.clone();
        connecting.push(tokio::spawn(async move {
            let mut client = SseClient::connect(TOKEN, &url, None).await;
            client.wait_live().await;
            client
        }));
    }
    let mut clients = Vec::new();
    for c in connecting {
        clients.push(c.await.expect("a client connects"));
    }
    let ids = Arc::new(produce_meetings(&producer, &source, 0..RECORDS, 3, 0));

    let mut reading = Vec::new();
    for mut client in clients {
        reading.push(tokio::spawn(async move {
            let events = client.events(RECORDS, Duration::from_secs(60)).await;
            (client, events)
        }));
    }
    let mut streams = Vec::new();
    let mut clients = Vec::new();
    for r in reading {
        let (client, events) = r.await.expect("a client reads");
        clients.push(client);
        streams.push(events);
    }
    let mut first = seqs(&streams[0], &ids);
    for (i, events) in streams.iter().enumerate() {
        assert_eq!(
            events, &streams[0],
            "client {i} got other events, ids or order than client 0"
        );
    }
    first.sort();
    assert_eq!(first, (0..RECORDS).collect::<Vec<_>>());

    let page = sse.metrics().await;
    assert_eq!(
        sample(
            &page,
            "zoomstream_sse_connected_clients",
            &[("source", "meeting-started")]
        ),
        CLIENTS as f64
    );
    assert_eq!(
        sample(
            &page,
            "zoomstream_sse_events_sent_total",
            &[("source", "meeting-started")]
        ),
        (CLIENTS * RECORDS) as f64
    );
    assert_eq!(
        sample(&page, "zoomstream_sse_live_consumers", &[]),
        1.0,
        "one Kafka consumer for all clients"
    );
    assert_eq!(
        sample(
            &page,
            "zoomstream_sse_catchups_total",
            &[("source", "meeting-started")]
        ),
        0.0
    );

    drop(clients);
    wait_for(
        "every client to be seen gone",
        Duration::from_secs(30),
        || async {
            let page = sse.metrics().await;
            sample(
                &page,
                "zoomstream_sse_connected_clients",
                &[("source", "meeting-started")],
            ) == 0.0
                && sample(
                    &page,
                    "zoomstream_sse_disconnects_total",
                    &[("source", "meeting-started"), ("reason", "client_closed")],
                ) == CLIENTS as f64
        },
    )
    .await;
    // With no client left, the source's consumer stops (here after 500 ms).
    wait_for(
        "the live consumer to stop",
        Duration::from_secs(30),
        || async { sample(&sse.metrics().await, "zoomstream_sse_live_consumers", &[]) == 0.0 },
    )
    .await;
    sse.stop().await;
}

// ------------------------------------------------------------------------------------------
// The browser
