//! Steady webhook load against an ingest, every answer tallied by request id: for tests that
//! take the broker away (or overload ingest) and then check that every webhook answered 200 is
//! in the raw topic and every other answer was a 503 given before Zoom's 3 s deadline.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use zoomstream_schemas::raw::headers;

use crate::records::{read_topic_until, Record};
use crate::zoom::{fixture, sign};

/// Zoom's deadline for an answer; later ones count as failed deliveries.
pub const ZOOM_DEADLINE: Duration = Duration::from_secs(3);

/// Every answer of a load run: request id → (status, latency); 0 when no answer came.
#[derive(Default)]
pub struct Tally {
    answers: Mutex<HashMap<String, (u16, Duration)>>,
}

impl Tally {
    pub fn count(&self) -> usize {
        self.answers.lock().unwrap().len()
    }

    pub fn accepted_count(&self) -> usize {
        self.answers
            .lock()
            .unwrap()
            .values()
            .filter(|(s, _)| *s == 200)
            .count()
    }

    /// Request ids answered 200.
    pub fn accepted(&self) -> HashSet<String> {
        self.answers
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, (s, _))| *s == 200)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// How many answers of each status.
    pub fn distribution(&self) -> HashMap<u16, usize> {
        let mut counts = HashMap::new();
        for (status, _) in self.answers.lock().unwrap().values() {
            *counts.entry(*status).or_default() += 1;
        }
        counts
    }

    /// Asserts that every answer was 200 or 503 and came within Zoom's deadline; returns
    /// (accepted ids, how many were refused, the slowest answer).
    pub fn check_answers(&self) -> (HashSet<String>, usize, Duration) {
        let answers = self.answers.lock().unwrap();
        let mut accepted = HashSet::new();
        let mut slowest = Duration::ZERO;
        for (id, (status, latency)) in answers.iter() {
            assert!(
                *status == 200 || *status == 503,
                "{id}: answered {status}: only 200 or 503 are allowed"
            );
            assert!(
                *latency < ZOOM_DEADLINE,
                "{id}: answered {status} after {latency:?}, past Zoom's deadline"
            );
            if *status == 200 {
                accepted.insert(id.clone());
            }
            slowest = slowest.max(*latency);
        }
        let refused = answers.len() - accepted.len();
        (accepted, refused, slowest)
    }
}

/// A running load: `connections` tasks posting distinct signed `meeting.participant_joined`
/// webhooks (request id = the meeting uuid) until stopped.
pub struct WebhookLoad {
    pub tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl WebhookLoad {
    pub fn start(url: String, secret: &str, connections: usize) -> WebhookLoad {
        let template: Value =
            serde_json::from_slice(&fixture("meeting.participant_joined.json")).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let tasks = (0..connections)
            .map(|c| {
                let (url, stop, tally, template, secret) = (
                    url.clone(),
                    stop.clone(),
                    tally.clone(),
                    template.clone(),
                    secret.to_owned(),
                );
                tokio::spawn(async move {
                    let client = reqwest::Client::builder()
                        .timeout(Duration::from_secs(10))
                        .build()
                        .unwrap();
                    let mut n = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        n += 1;
                        let id = format!("c{c}-{n}-{}", std::process::id());
                        let mut body = template.clone();
                        body["payload"]["object"]["uuid"] = json!(id);
                        let signed = sign(&secret, &serde_json::to_vec(&body).unwrap());
                        let started = Instant::now();
                        let status = match client
                            .post(&url)
                            .header("content-type", "application/json")
                            .header("x-zm-request-timestamp", &signed.timestamp)
                            .header("x-zm-signature", &signed.signature)
                            .header("x-zm-request-id", &id)
                            .body(signed.body)
                            .send()
                            .await
                        {
                            Ok(r) => r.status().as_u16(),
                            Err(_) => 0,
                        };
                        tally
                            .answers
                            .lock()
                            .unwrap()
                            .insert(id, (status, started.elapsed()));
                    }
                })
            })
            .collect();
        WebhookLoad { tally, stop, tasks }
    }

    /// Waits until `more` further answers (of any status) came in.
    pub async fn wait_answers(&self, what: &str, more: usize, timeout: Duration) {
        let target = self.tally.count() + more;
        let tally = self.tally.clone();
        crate::wait::wait_for(what, timeout, || {
            let tally = tally.clone();
            async move { tally.count() >= target }
        })
        .await;
    }

    /// Waits until `more` further webhooks were accepted (ingest recovered).
    pub async fn wait_accepted(&self, what: &str, more: usize, timeout: Duration) {
        let target = self.tally.accepted_count() + more;
        let tally = self.tally.clone();
        crate::wait::wait_for(what, timeout, || {
            let tally = tally.clone();
            async move { tally.accepted_count() >= target }
        })
        .await;
    }

    pub async fn stop(self) -> Arc<Tally> {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await.unwrap();
        }
        self.tally
    }
}

/// Reads the raw topic until every accepted request id is on it (the tests' promise), for at
/// most 60 s; the records read.
pub fn read_until_all_found(brokers: &str, topic: &str, accepted: &HashSet<String>) -> Vec<Record> {
    read_topic_until(brokers, topic, Duration::from_secs(60), |records| {
        let found: HashSet<String> = records
            .iter()
            .filter_map(|r| r.header(headers::ZM_REQUEST_ID))
            .collect();
        accepted.is_subset(&found)
    })
}

/// Posts distinct signed `meeting.started` webhooks (uuid `live-<i>`) one after another, each
/// `pause` apart, as Zoom delivers live events; each must be answered 200. Returns the event
/// ids their `meeting.started` source records must carry.
pub async fn post_meetings(
    url: &str,
    secret: &str,
    range: std::ops::Range<usize>,
    pause: Duration,
) -> HashSet<String> {
    let template: Value = serde_json::from_slice(&fixture("meeting.started.json")).unwrap();
    let client = reqwest::Client::new();
    let mut ids = HashSet::new();
    for i in range {
        let mut body = template.clone();
        body["payload"]["object"]["uuid"] = json!(format!("live-{i}"));
        body["event_ts"] = json!(1_800_000_000_000i64 + i as i64);
        ids.insert(zoomstream_schemas::raw::event_id(
            zoomstream_schemas::App::ZOOM,
            &body,
        ));
        let signed = sign(secret, &serde_json::to_vec(&body).unwrap());
        let status = crate::zoom::post_signed(&client, url, &signed, &format!("live-{i}"))
            .await
            .status();
        assert_eq!(status, 200, "live webhook {i} accepted");
        tokio::time::sleep(pause).await;
    }
    ids
}
