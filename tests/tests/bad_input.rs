//! The bad-input corpus against the real `zoomstream-ingest` binary: hundreds of generated and
//! hand-picked requests that must not be published. Each gets its documented status and error
//! code with a reason; nothing but the deliberate originals reaches Kafka; the service stays
//! healthy; neither secret ever appears in a response or a log line.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use zoomstream_schemas::raw::headers;
use zoomstream_tests::*;

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
    expected.push("sentinel".into());
    assert_eq!(
        published, expected,
        "only the originals and the sentinel were published"
    );
    let page = get_text(&client, &ingest.url("/metrics")).await;
    assert_eq!(
        metric(
            &page,
            r#"zoomstream_ingest_requests_total{app="zoom",outcome="replay"}"#
        ),
        (2 * event_fixtures().len()) as f64,
        "two replays of each fixture"
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
        "bad-input corpus: {} requests + {slow_cases} slow bodies + {} replays rejected or deduplicated; {} log lines checked for secrets",
        cases.len(),
        4 * event_fixtures().len(),
        log.lines().count()
    );
}
