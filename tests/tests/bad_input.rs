//! The bad-input corpus against the real `zoomstream-ingest` binary: hundreds of generated and
//! hand-picked requests that must not be published. Each gets its documented status and error
//! code with a reason; nothing but the deliberate originals reaches Kafka; the service stays
//! healthy; neither secret ever appears in a response or a log line.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use zoomstream_schemas::raw::headers;
use zoomstream_tests::*;

mod sse_support;

const ZOOM_SECRET: &str = "corpus-zoom-secret-7f3a";
const ADMIN_SECRET: &str = "corpus-admin-secret-91bc";
const MAX_BODY: usize = 64 * 1024;

struct Case {
    name: String,
    method: reqwest::Method,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    status: u16,
    /// The `error` code of the JSON body.
    code: Option<&'static str>,
}

fn signed_headers(secret: &str, body: &[u8], ts: u64) -> Vec<(String, Vec<u8>)> {
    let signed = sign_at(secret, body, ts);
    vec![
        (
            "content-type".into(),
            b"application/json; charset=utf-8".to_vec(),
        ),
        (
            "x-zm-request-timestamp".into(),
            signed.timestamp.into_bytes(),
        ),
        ("x-zm-signature".into(), signed.signature.into_bytes()),
    ]
}

fn replace(
    headers: &[(String, Vec<u8>)],
    name: &str,
    value: Option<&[u8]>,
) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = headers.iter().filter(|(k, _)| k != name).cloned().collect();
    if let Some(v) = value {
        out.push((name.to_owned(), v.to_vec()));
    }
    out
}

fn corpus() -> Vec<Case> {
    let now = now_secs();
    let mut cases = Vec::new();
    let mut bodies = event_fixtures();
    bodies.push((
        "endpoint.url_validation.json".into(),
        fixture("endpoint.url_validation.json"),
    ));
    for (app, secret, other_secret) in [
        ("zoom", ZOOM_SECRET, ADMIN_SECRET),
        ("zoom-admin", ADMIN_SECRET, ZOOM_SECRET),
    ] {
        let path = format!("/webhooks/{app}");
        for (fixture_name, body) in &bodies {
            let good = signed_headers(secret, body, now);
            let mut add = |what: &str,
                           headers: Vec<(String, Vec<u8>)>,
                           body: Vec<u8>,
                           status: u16,
                           code: &'static str| {
                cases.push(Case {
                    name: format!("{app} {fixture_name}: {what}"),
                    method: reqwest::Method::POST,
                    path: path.clone(),
                    headers,
                    body,
                    status,
                    code: Some(code),
                });
            };
            let sig = String::from_utf8(good[2].1.clone()).unwrap();
            add(
                "no signature",
                replace(&good, "x-zm-signature", None),
                body.clone(),
                401,
                "unauthorized",
            );
            add(
                "no timestamp",
                replace(&good, "x-zm-request-timestamp", None),
                body.clone(),
                401,
                "unauthorized",
            );
            add(
                "no zoom headers",
                replace(
                    &replace(&good, "x-zm-signature", None),
                    "x-zm-request-timestamp",
                    None,
                ),
                body.clone(),
                401,
                "unauthorized",
            );
            for cut in [3, 10, 40, sig.len() - 1] {
                add(
                    &format!("signature cut to {cut}"),
                    replace(&good, "x-zm-signature", Some(&sig.as_bytes()[..cut])),
                    body.clone(),
                    401,
                    "unauthorized",
                );
            }
            add(
                "v1 scheme",
                replace(
                    &good,
                    "x-zm-signature",
                    Some(sig.replacen("v0=", "v1=", 1).as_bytes()),
                ),
                body.clone(),
                401,
                "unauthorized",
            );
            add(
                "signature not hex",
                replace(
                    &good,
                    "x-zm-signature",
                    Some(format!("v0={}", "zz".repeat(32)).as_bytes()),
                ),
                body.clone(),
                401,
                "unauthorized",
            );
            add(
                "signature with a flipped digit",
                replace(
                    &good,
                    "x-zm-signature",
                    Some(flip_hex_digit(&sig).as_bytes()),
                ),
                body.clone(),
                401,
                "unauthorized",
            );
            add(
                "signature not ASCII",
                replace(&good, "x-zm-signature", Some("v0=\u{e9}".as_bytes())),
                body.clone(),
                401,
                "unauthorized",
            );
            add(
                "empty signature",
                replace(&good, "x-zm-signature", Some(b"")),
                body.clone(),
                401,
                "unauthorized",
            );
            add(
                "wrong secret",
                signed_headers("guess", body, now),
                body.clone(),
                401,
                "unauthorized",
            );
            add(
                "other app's secret",
                signed_headers(other_secret, body, now),
                body.clone(),
                401,
                "unauthorized",
            );
            add(
                "empty secret",
                signed_headers("", body, now),
                body.clone(),
                401,
                "unauthorized",
            );
            for (what, ts) in [
                ("stale by 330 s", now - 330),
                ("stale by a day", now - 86_400),
                ("330 s in the future", now + 330),
                ("epoch", 0),
            ] {
                add(
                    what,
                    signed_headers(secret, body, ts),
                    body.clone(),
                    401,
                    "unauthorized",
                );
            }
            for ts in ["abc", "-1", "1e9", " ", "99999999999999999999999"] {
                let mut h = signed_headers(secret, body, now);
                h = replace(&h, "x-zm-request-timestamp", Some(ts.as_bytes()));
                add(
                    &format!("timestamp {ts:?}"),
                    h,
                    body.clone(),
                    401,
                    "unauthorized",
                );
            }
            // Signed body, different body: one byte flipped at spread positions, one appended,
            // one removed.
            for i in 0..20 {
                let at = i * (body.len() - 1) / 19;
                let mut changed = body.clone();
                changed[at] ^= 0x01;
                add(
                    &format!("byte {at} flipped after signing"),
                    good.clone(),
                    changed,
                    401,
                    "unauthorized",
                );
            }
            add(
                "byte appended after signing",
                good.clone(),
                [body.as_slice(), b" "].concat(),
                401,
                "unauthorized",
            );
            add(
                "byte removed after signing",
                good.clone(),
                body[..body.len() - 1].to_vec(),
                401,
                "unauthorized",
            );
            // Stale replay of this exact request.
            add(
                "replayed after the window",
                signed_headers(secret, body, now - 400),
                body.clone(),
                401,
                "unauthorized",
            );
            // Content types.
            for ct in [
                "text/plain",
                "application/xml",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
                "application/jsonp",
                "",
            ] {
                add(
                    &format!("content type {ct:?}"),
                    replace(&good, "content-type", Some(ct.as_bytes())),
                    body.clone(),
                    415,
                    "unsupported_media_type",
                );
            }
            add(
                "no content type",
                replace(&good, "content-type", None),
                body.clone(),
                415,
                "unsupported_media_type",
            );
            let mut two = good.clone();
            two.push(("content-type".into(), b"text/plain".to_vec()));
            add(
                "two content types",
                two,
                body.clone(),
                415,
                "unsupported_media_type",
            );
        }
        // Signed, but not a webhook.
        let signed_bad =
            |what: &str, body: Vec<u8>, status: u16, code: &'static str, cases: &mut Vec<Case>| {
                cases.push(Case {
                    name: format!("{app}: {what}"),
                    method: reqwest::Method::POST,
                    path: path.clone(),
                    headers: signed_headers(secret, &body, now),
                    body,
                    status,
                    code: Some(code),
                });
            };
        let deep_array = format!(
            "{{\"event\":\"meeting.started\",\"payload\":{}{}}}",
            "[".repeat(5_000),
            "]".repeat(5_000)
        );
        let deep_object = format!("{}{}", "{\"a\":".repeat(200), "}".repeat(200));
        for (what, body, status, code) in [
            ("empty body", Vec::new(), 400, "malformed_json"),
            (
                "not JSON",
                b"event=meeting.started".to_vec(),
                400,
                "malformed_json",
            ),
            (
                "truncated JSON",
                b"{\"event\": \"meeting.started\", \"payload\": {".to_vec(),
                400,
                "malformed_json",
            ),
            (
                "invalid UTF-8",
                b"{\"event\": \"meeting.\xff\xfestarted\"}".to_vec(),
                400,
                "malformed_json",
            ),
            (
                "UTF-16 body",
                "{\"event\":\"x\"}"
                    .encode_utf16()
                    .flat_map(u16::to_le_bytes)
                    .collect(),
                400,
                "malformed_json",
            ),
            (
                "deeply nested array",
                deep_array.into_bytes(),
                400,
                "malformed_json",
            ),
            (
                "deeply nested object",
                deep_object.into_bytes(),
                400,
                "malformed_json",
            ),
            (
                "number too large",
                b"{\"event\":\"meeting.started\",\"event_ts\":1e400}".to_vec(),
                400,
                "malformed_json",
            ),
            (
                "duplicate event key",
                b"{\"event\":\"meeting.started\",\"event\":\"meeting.ended\"}".to_vec(),
                400,
                "malformed_json",
            ),
            (
                "duplicate nested key",
                b"{\"event\":\"meeting.started\",\"payload\":{\"object\":{\"id\":1,\"id\":2}}}"
                    .to_vec(),
                400,
                "malformed_json",
            ),
            (
                "trailing garbage",
                b"{\"event\":\"meeting.started\"} x".to_vec(),
                400,
                "malformed_json",
            ),
            (
                "two documents",
                b"{\"event\":\"a\"}{\"event\":\"b\"}".to_vec(),
                400,
                "malformed_json",
            ),
            (
                "no event",
                b"{\"payload\":{}}".to_vec(),
                400,
                "missing_event",
            ),
            (
                "event null",
                b"{\"event\":null}".to_vec(),
                400,
                "missing_event",
            ),
            (
                "event a number",
                b"{\"event\":42}".to_vec(),
                400,
                "missing_event",
            ),
            (
                "event empty",
                b"{\"event\":\"\"}".to_vec(),
                400,
                "missing_event",
            ),
            (
                "event an object",
                b"{\"event\":{\"name\":\"meeting.started\"}}".to_vec(),
                400,
                "missing_event",
            ),
            (
                "top-level array",
                b"[{\"event\":\"meeting.started\"}]".to_vec(),
                400,
                "missing_event",
            ),
            (
                "top-level string",
                b"\"meeting.started\"".to_vec(),
                400,
                "missing_event",
            ),
            ("top-level null", b"null".to_vec(), 400, "missing_event"),
            (
                "validation without payload",
                b"{\"event\":\"endpoint.url_validation\"}".to_vec(),
                400,
                "missing_plain_token",
            ),
            (
                "validation with a numeric token",
                b"{\"event\":\"endpoint.url_validation\",\"payload\":{\"plainToken\":5}}".to_vec(),
                400,
                "missing_plain_token",
            ),
            (
                "one byte over the limit",
                vec![b' '; MAX_BODY + 1],
                413,
                "payload_too_large",
            ),
            (
                "a megabyte",
                [
                    b"{\"event\":\"meeting.started\",\"x\":\"".as_slice(),
                    &vec![b'a'; 1 << 20],
                    b"\"}",
                ]
                .concat(),
                413,
                "payload_too_large",
            ),
        ] {
            signed_bad(what, body, status, code, &mut cases);
        }
        // Wrong methods and paths.
        for method in [
            reqwest::Method::GET,
            reqwest::Method::PUT,
            reqwest::Method::DELETE,
            reqwest::Method::PATCH,
        ] {
            cases.push(Case {
                name: format!("{app}: {method}"),
                method,
                path: path.clone(),
                headers: signed_headers(secret, b"{}", now),
                body: b"{}".to_vec(),
                status: 405,
                code: Some("method_not_allowed"),
            });
        }
    }
    for path in [
        "/webhooks/",
        "/webhooks/teams",
        "/webhooks/zoom/extra",
        "/webhooks/ZOOM",
        "/webhook/zoom",
        "/",
    ] {
        cases.push(Case {
            name: format!("path {path}"),
            method: reqwest::Method::POST,
            path: path.to_owned(),
            headers: signed_headers(ZOOM_SECRET, b"{\"event\":\"meeting.started\"}", now),
            body: b"{\"event\":\"meeting.started\"}".to_vec(),
            status: 404,
            code: Some("not_found"),
        });
    }
    // Paths written other than plainly: refused before routing, whatever they decode to (dot
    // segments too, runtime::listener::guard; the URL parser of the client here removes them).
    for path in [
        "/webhooks/zoom-admin%00",
        "/webhooks/zoom%2Dadmin",
        "/webhooks/%7Aoom",
        "/webhooks//zoom",
    ] {
        cases.push(Case {
            name: format!("path {path}"),
            method: reqwest::Method::POST,
            path: path.to_owned(),
            headers: signed_headers(ZOOM_SECRET, b"{\"event\":\"meeting.started\"}", now),
            body: b"{\"event\":\"meeting.started\"}".to_vec(),
            status: 400,
            code: Some("non_canonical_path"),
        });
    }
    cases
}

fn flip_hex_digit(sig: &str) -> String {
    let mut bytes = sig.as_bytes().to_vec();
    let i = bytes.len() - 5;
    bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
    String::from_utf8(bytes).unwrap()
}

/// Sends a request whose body trickles in slower than the body timeout, over raw TCP.
fn slow_body(
    port: u16,
    body: &[u8],
    headers: &[(String, Vec<u8>)],
    stop_after: Option<usize>,
) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = format!(
        "POST /webhooks/zoom HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\n",
        body.len()
    )
    .into_bytes();
    for (k, v) in headers {
        head.extend_from_slice(k.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(v);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    stream.write_all(&head).unwrap();
    let limit = stop_after.unwrap_or(body.len());
    // One byte every 100 ms until the server answers (it must, at the body timeout).
    for byte in &body[..limit] {
        if stream.write_all(std::slice::from_ref(byte)).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        stream.set_nonblocking(true).unwrap();
        let mut peek = [0u8; 1];
        let answered = matches!(stream.peek(&mut peek), Ok(n) if n > 0);
        stream.set_nonblocking(false).unwrap();
        if answered {
            break;
        }
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bad_input_corpus_is_rejected_and_publishes_nothing() {
    let brokers = brokers();
    let raw_topic = unique("raw");
    create_topic(&brokers, &raw_topic, 1).await;
    let mut ingest = IngestProcess::spawn(&[
        ("ZOOMSTREAM_KAFKA_BROKERS", brokers.clone()),
        ("ZOOMSTREAM_RAW_TOPIC", raw_topic.clone()),
        ("ZOOMSTREAM_ZOOM_SECRET_TOKEN", ZOOM_SECRET.into()),
        ("ZOOMSTREAM_ZOOM_ADMIN_SECRET_TOKEN", ADMIN_SECRET.into()),
        ("ZOOMSTREAM_MAX_BODY_BYTES", MAX_BODY.to_string()),
        ("ZOOMSTREAM_BODY_TIMEOUT_MS", "700".into()),
    ]);
    // A connection per request: a request rejected before its body was read (413, 405) leaves
    // its connection to be closed by the server, not reused.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    ingest.wait_ready(&client).await;

    // Originals, each replayed twice inside the window: published once, answered 200 thrice.
    let mut originals = Vec::new();
    for (app, secret) in [("zoom", ZOOM_SECRET), ("zoom-admin", ADMIN_SECRET)] {
        for (name, body) in event_fixtures() {
            let signed = sign(secret, &body);
            let request_id = unique("original");
            let url = ingest.url(&format!("/webhooks/{app}"));
            let first = post_signed(&client, &url, &signed, &request_id).await;
            assert_eq!(first.status(), 200, "{app} {name}");
            let first: serde_json::Value = first.json().await.unwrap();
            for _ in 0..2 {
                let replay = post_signed(&client, &url, &signed, &unique("replay")).await;
                assert_eq!(
                    replay.status(),
                    200,
                    "{app} {name}: a replay is answered 200"
                );
                let replay: serde_json::Value = replay.json().await.unwrap();
                assert_eq!(replay["status"], "duplicate");
                assert_eq!(replay["event_id"], first["event_id"]);
            }
            originals.push(request_id);
        }
    }

    let cases = corpus();
    assert!(cases.len() >= 500, "the corpus has {} cases", cases.len());
    for case in &cases {
        let mut request = client
            .request(case.method.clone(), ingest.url(&case.path))
            .body(case.body.clone());
        for (k, v) in &case.headers {
            request = request.header(
                k.as_str(),
                reqwest::header::HeaderValue::from_bytes(v).unwrap(),
            );
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(response.status().as_u16(), case.status, "{}", case.name);
        let text = response.text().await.unwrap();
        assert!(
            !text.contains(ZOOM_SECRET) && !text.contains(ADMIN_SECRET),
            "{}: a secret in the response",
            case.name
        );
        if let Some(code) = case.code {
            let error: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{}: JSON error body, got {text}", case.name));
            assert_eq!(error["error"], code, "{}: {text}", case.name);
            assert!(
                error["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{}: a reason",
                case.name
            );
        }
    }

    // Slow bodies: dribbled, or stopped halfway; answered 408 at the body timeout.
    let body = fixture("meeting.started.json");
    let slow_headers = signed_headers(ZOOM_SECRET, &body, now_secs());
    let mut slow_cases = 0;
    for stop_after in [None, Some(5)] {
        let started = Instant::now();
        let response = tokio::task::spawn_blocking({
            let (body, headers, port) = (body.clone(), slow_headers.clone(), ingest.port);
            move || slow_body(port, &body, &headers, stop_after)
        })
        .await
        .unwrap();
        assert!(
            response.starts_with("HTTP/1.1 408"),
            "slow body ({stop_after:?}): {response}"
        );
        assert!(response.contains("body_timeout"), "{response}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "answered at the body timeout, not later"
        );
        slow_cases += 1;
    }

    // Unsigned pass-through headers that are too long or not plain: published without them,
    // each drop counted.
    let mut passed_through = Vec::new();
    for (what, name, value) in [
        (
            "request id of 10 KiB",
            "x-zm-request-id",
            "r".repeat(10 * 1024).into_bytes(),
        ),
        (
            "request id not ASCII",
            "x-zm-request-id",
            b"req-\xc3\xa9".to_vec(),
        ),
        (
            "request id with a space",
            "x-zm-request-id",
            b"req id".to_vec(),
        ),
        (
            "traceparent malformed",
            "traceparent",
            b"00-zz-yy-01".to_vec(),
        ),
        (
            "traceparent of 4 KiB",
            "traceparent",
            "0".repeat(4096).into_bytes(),
        ),
    ] {
        let mut body: serde_json::Value =
            serde_json::from_slice(&fixture("meeting.started.json")).unwrap();
        body["case"] = what.into();
        let body = serde_json::to_vec(&body).unwrap();
        let mut request = client.post(ingest.url("/webhooks/zoom")).body(body.clone());
        for (k, v) in signed_headers(ZOOM_SECRET, &body, now_secs()) {
            request = request.header(k, v);
        }
        let request_id = unique("passthrough");
        if name != "x-zm-request-id" {
            request = request.header("x-zm-request-id", &request_id);
            passed_through.push(request_id);
        }
        let response = request
            .header(
                name,
                reqwest::header::HeaderValue::from_bytes(&value).unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "{what}: published, without the header"
        );
    }

    // Still healthy, and still accepting; then only the originals and the sentinel are there.
    assert_eq!(
        client
            .get(ingest.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let sentinel = post_signed(
        &client,
        &ingest.url("/webhooks/zoom"),
        &sign(ZOOM_SECRET, &body),
        "sentinel",
    )
    .await;
    assert_eq!(sentinel.status(), 200);
    let records = read_topic_until(&brokers, &raw_topic, Duration::from_secs(30), |r| {
        r.iter()
            .any(|r| r.header(headers::ZM_REQUEST_ID).as_deref() == Some("sentinel"))
    });
    let published: Vec<String> = records
        .iter()
        .filter_map(|r| r.header(headers::ZM_REQUEST_ID))
        .collect();
    let mut expected = originals.clone();
    expected.extend(passed_through);
    expected.push("sentinel".into());
    assert_eq!(
        published, expected,
        "only the originals, the pass-through cases and the sentinel were published"
    );
    let dropped: Vec<&Record> = records
        .iter()
        .filter(|r| r.header(headers::ZM_REQUEST_ID).is_none())
        .collect();
    assert_eq!(dropped.len(), 3, "the three bad request ids were left off");
    assert!(
        records
            .iter()
            .all(|r| !r.headers.contains_key(headers::TRACEPARENT)),
        "no bad traceparent was published"
    );

    let page = get_text(&client, &ingest.url("/metrics")).await;
    assert_eq!(
        metric(
            &page,
            r#"zoomstream_ingest_requests_total{app="zoom",outcome="replay"}"#
        ),
        10.0
    );
    let dropped_headers = |header: &str, reason: &str| {
        metric(
            &page,
            &format!(
                r#"zoomstream_ingest_headers_dropped_total{{header="{header}",reason="{reason}"}}"#
            ),
        )
    };
    assert_eq!(dropped_headers("x-zm-request-id", "too_long"), 1.0);
    assert_eq!(dropped_headers("x-zm-request-id", "bad_characters"), 2.0);
    assert_eq!(
        dropped_headers("traceparent", "malformed") + dropped_headers("traceparent", "too_long"),
        2.0
    );
    // Answered before any handler: with the JSON body, counted.
    assert_eq!(
        metric(
            &page,
            r#"zoomstream_http_requests_rejected_total{reason="method_not_allowed"}"#
        ),
        8.0
    );
    assert_eq!(
        metric(
            &page,
            r#"zoomstream_http_requests_rejected_total{reason="non_canonical_path"}"#
        ),
        4.0
    );

    let status = ingest.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    let log = ingest.log_text();
    assert!(
        log.lines().count() > cases.len(),
        "every request was logged"
    );
    assert!(
        !log.contains(ZOOM_SECRET) && !log.contains(ADMIN_SECRET),
        "a secret reached the log"
    );
    figures!(
        "bad-input corpus: {} requests + {slow_cases} slow bodies + 20 replays rejected or deduplicated; {} log lines checked for secrets",
        cases.len(),
        log.lines().count()
    );
}

/// Writes `request` on a new connection and reads the answer until the server closes it.
fn raw_exchange(port: u16, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The server may answer and close before taking all of an oversized request.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn what_hyper_rejects_and_readiness_are_answered_briefly_and_counted() {
    let brokers = brokers();
    // The raw topic is missing and ingest may not create it: /readyz says why, briefly.
    let raw_topic = unique("missing-raw");
    let ingest = IngestProcess::spawn(&[
        ("ZOOMSTREAM_KAFKA_BROKERS", brokers.clone()),
        ("ZOOMSTREAM_RAW_TOPIC", raw_topic.clone()),
        ("ZOOMSTREAM_CREATE_TOPICS", "false".into()),
        ("ZOOMSTREAM_ZOOM_SECRET_TOKEN", ZOOM_SECRET.into()),
    ]);
    let client = reqwest::Client::new();

    let threads = || {
        std::fs::read_to_string(format!("/proc/{}/status", ingest.child.id()))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .map(|n| n.trim().parse::<u64>().unwrap())
            .unwrap()
    };
    let first = client.get(ingest.url("/readyz")).send().await.unwrap();
    assert_eq!(first.status(), 503);
    let body = first.text().await.unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({"status": "not_ready", "reason": "raw_topic_missing"})
    );
    assert!(!body.contains(&raw_topic), "no topic name: {body}");
    let threads_before = threads();
    let mut calls = Vec::new();
    for _ in 0..150 {
        let (client, url) = (client.clone(), ingest.url("/readyz"));
        calls.push(tokio::spawn(async move {
            client.get(url).send().await.unwrap().status()
        }));
    }
    for call in calls {
        assert_eq!(call.await.unwrap(), 503);
    }
    let threads_after = threads();
    assert!(
        threads_after <= threads_before + 4,
        "150 concurrent /readyz: {threads_before} -> {threads_after} threads"
    );

    // Requests hyper refuses itself: answered by hyper (no handler runs), counted.
    let garbage = raw_exchange(ingest.port, b"NOT HTTP AT ALL\r\n\r\n");
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let too_large = raw_exchange(ingest.port, huge.as_bytes());
    assert!(too_large.starts_with("HTTP/1.1 431"), "{too_large}");
    // A dot segment, which an HTTP client library would have removed.
    let dotted = raw_exchange(
        ingest.port,
        b"POST /healthz/../webhooks/zoom HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    );
    assert!(
        dotted.starts_with("HTTP/1.1 400") && dotted.contains("non_canonical_path"),
        "{dotted}"
    );
    let page = get_text(&client, &ingest.url("/metrics")).await;
    for reason in ["bad_request", "headers_too_large"] {
        assert_eq!(
            metric(
                &page,
                &format!(r#"zoomstream_http_connections_closed_total{{reason="{reason}"}}"#)
            ),
            1.0,
            "{reason}"
        );
    }
    figures!(
        "bad input: /readyz not ready answers {{reason: raw_topic_missing}}; 150 concurrent calls took ingest from {threads_before} to {threads_after} threads; hyper's 400 (garbage) and 431 (1 MiB header) counted"
    );
}

#[test]
fn a_refused_kafka_option_is_never_echoed() {
    const PASSWORD: &str = "corpus-sasl-password-5e1d";
    for (options, what) in [
        (format!("sasl.password:{PASSWORD}"), "not key=value"),
        (
            format!("security.protocol={PASSWORD}"),
            "refused by librdkafka",
        ),
    ] {
        let output = std::process::Command::new(binary("zoomstream-ingest"))
            .env_clear()
            .env("ZOOMSTREAM_LISTEN", "127.0.0.1:0")
            .env("ZOOMSTREAM_KAFKA_BROKERS", brokers())
            .env("ZOOMSTREAM_ZOOM_SECRET_TOKEN", ZOOM_SECRET)
            .env("ZOOMSTREAM_KAFKA_OPTIONS", options)
            .output()
            .expect("running zoomstream-ingest");
        assert!(!output.status.success(), "{what}: refused");
        let said = [output.stdout, output.stderr].concat();
        let said = String::from_utf8_lossy(&said);
        assert!(
            !said.contains(PASSWORD),
            "{what}: the value was echoed: {said}"
        );
        assert!(!said.is_empty(), "{what}: a reason is given");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sse_refuses_without_telling_what_it_should_not() {
    use sse_support::*;
    let sources = TestSources::new(SOURCES);
    for source in &sources.file.sources {
        create_topic(&brokers(), &source.topic, 1).await;
    }
    let mut config = sse_config(&sources);
    config.cors_origins = vec!["*".into()];
    let sse = SseApp::start(config).await;
    let client = reqwest::Client::new();
    let started = sse.events_url("meeting-started");

    // Origin `null` (sandboxed frames, local files) is never allowed, not even by `*`.
    for (origin, allowed) in [("null", false), ("https://app.example", true)] {
        for method in [reqwest::Method::GET, reqwest::Method::OPTIONS] {
            let response = client
                .request(method.clone(), &started)
                .header("origin", origin)
                .header("authorization", format!("Bearer {TOKEN}"))
                .send()
                .await
                .unwrap();
            assert_eq!(
                response
                    .headers()
                    .contains_key("access-control-allow-origin"),
                allowed,
                "{method} with origin {origin}"
            );
        }
    }
    // Source names cannot be probed without a token; paths are plain or refused.
    for (path, status, code) in [
        ("/sources/no-such-source/events", 401, "unauthorized"),
        (
            "/sources/meeting%2Dstarted/events",
            400,
            "non_canonical_path",
        ),
        ("/sources//events", 400, "non_canonical_path"),
    ] {
        let response = client.get(sse.url(path)).send().await.unwrap();
        assert_eq!(response.status(), status, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], code, "{path}");
    }
    let response = client.delete(&started).send().await.unwrap();
    assert_eq!(response.status(), 405);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");
    sse.stop().await;
}
