//! Realistic Zoom webhooks: the shapes of tests/fixtures/zoom, with fresh uuids, ids, names and
//! timestamps per webhook, in a mix weighted like a real account's traffic (participants joining
//! and leaving dominate; some meeting lifecycle; a few recording.completed with several files).

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use zoomstream_schemas::{raw, App};

/// The traffic mix, in percent (sums to 100).
pub const MIX: &[(&str, u32)] = &[
    ("meeting.participant_joined", 39),
    ("meeting.participant_left", 39),
    ("meeting.started", 6),
    ("meeting.ended", 6),
    ("meeting.created", 3),
    ("meeting.updated", 3),
    ("recording.completed", 4),
];

/// Share of webhooks delivered to the account-level Zoom Admin app (the rest: the Zoom app).
pub const ADMIN_PERCENT: u32 = 20;

/// A small, fast, seedable PRNG (xorshift64*): the generator must not cost the load generator
/// more than the service it measures.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    fn push_alnum(&mut self, out: &mut String, len: usize) {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        for _ in 0..len {
            out.push(ALPHABET[self.below(ALPHABET.len() as u64) as usize] as char);
        }
    }

    fn alnum(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len);
        self.push_alnum(&mut s, len);
        s
    }

    fn uuid(&mut self) -> String {
        let (a, b) = (self.next_u64(), self.next_u64());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0x3fff | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }
}

/// One webhook as Zoom would deliver it.
pub struct Webhook {
    pub app: App,
    pub event: &'static str,
    pub body: Vec<u8>,
}

pub struct Generator {
    rng: Rng,
    accounts: Vec<String>,
    hosts: Vec<(String, String)>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

/// RFC 3339 (UTC, seconds) of a unix time in seconds, without a date library.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

impl Generator {
    pub fn new(seed: u64) -> Generator {
        let mut rng = Rng::new(seed);
        let accounts = (0..50).map(|_| rng.alnum(22)).collect();
        let hosts = (0..500)
            .map(|i| (rng.alnum(22), format!("host{i}@example.com")))
            .collect();
        Generator {
            rng,
            accounts,
            hosts,
        }
    }

    fn pick_event(&mut self) -> &'static str {
        let mut roll = self.rng.below(100) as u32;
        for &(event, weight) in MIX {
            if roll < weight {
                return event;
            }
            roll -= weight;
        }
        MIX[0].0
    }

    /// The next webhook of the mix, timestamped now.
    pub fn next(&mut self) -> Webhook {
        self.next_at(now_ms())
    }

    /// The next webhook of the mix, timestamped `event_ts` (ms): deterministic for a seed.
    pub fn next_at(&mut self, event_ts: i64) -> Webhook {
        let event = self.pick_event();
        let app = if self.rng.below(100) < ADMIN_PERCENT as u64 {
            App::ZOOM_ADMIN
        } else {
            App::ZOOM
        };
        let body = self.body(event, event_ts);
        Webhook {
            app,
            event,
            body: body.into_bytes(),
        }
    }

    fn body(&mut self, event: &str, event_ts: i64) -> String {
        let rng = &mut self.rng;
        let account = &self.accounts[rng.below(self.accounts.len() as u64) as usize];
        let (host_id, host_email) = &self.hosts[rng.below(self.hosts.len() as u64) as usize];
        let meeting_id = 10_000_000_000 + rng.below(89_999_999_999);
        let mut uuid = rng.alnum(22);
        uuid.push_str("==");
        let start = event_ts / 1000 - rng.below(7200) as i64;
        let start_time = rfc3339(start);
        let topic = format!("Weekly sync {}", rng.below(10_000));
        let mut s = String::with_capacity(1024);
        match event {
            "meeting.participant_joined" | "meeting.participant_left" => {
                let (time_key, extra) = if event.ends_with("joined") {
                    ("join_time", String::new())
                } else {
                    (
                        "leave_time",
                        r#","leave_reason":"left the meeting""#.to_owned(),
                    )
                };
                let n = rng.below(1_000_000);
                let _ = write!(
                    s,
                    r#"{{"event":"{event}","event_ts":{event_ts},"payload":{{"account_id":"{account}","object":{{"id":"{meeting_id}","uuid":"{uuid}","host_id":"{host_id}","topic":"{topic}","type":8,"start_time":"{start_time}","timezone":"America/Los_Angeles","duration":60,"participant":{{"user_id":"{}","user_name":"Participant {n}","id":"{}","participant_uuid":"{}","{time_key}":"{}","email":"p{n}@example.com","registrant_id":"{}","participant_user_id":"{}","customer_key":"{}","phone_number":"86152{:08}"{extra}}}}}}}}}"#,
                    16_000_000 + rng.below(1_000_000),
                    rng.alnum(21),
                    rng.alnum(23),
                    rfc3339(event_ts / 1000),
                    rng.alnum(24),
                    rng.alnum(17),
                    rng.alnum(12),
                    rng.below(100_000_000),
                );
            }
            "meeting.started" | "meeting.ended" => {
                let end = if event == "meeting.ended" {
                    format!(r#","end_time":"{}""#, rfc3339(event_ts / 1000))
                } else {
                    String::new()
                };
                let _ = write!(
                    s,
                    r#"{{"event":"{event}","event_ts":{event_ts},"payload":{{"account_id":"{account}","operator":"{host_email}","operator_id":"{host_id}","operation":"single","object":{{"id":"{meeting_id}","uuid":"{uuid}","host_id":"{host_id}","topic":"{topic}","type":8,"start_time":"{start_time}","timezone":"America/Los_Angeles","duration":60{end}}}}}}}"#
                );
            }
            "meeting.created" | "meeting.updated" => {
                let old = if event == "meeting.updated" {
                    format!(
                        r#","old_object":{{"id":{meeting_id},"uuid":"{uuid}","topic":"Old topic","start_time":"{start_time}"}},"time_stamp":{event_ts}"#
                    )
                } else {
                    String::new()
                };
                let _ = write!(
                    s,
                    r#"{{"event":"{event}","event_ts":{event_ts},"payload":{{"account_id":"{account}","operator":"{host_email}","operator_id":"{host_id}","operation":"single","object":{{"uuid":"{uuid}","id":{meeting_id},"host_id":"{host_id}","topic":"{topic}","type":2,"start_time":"{start_time}","duration":60,"timezone":"America/Los_Angeles","join_url":"https://example.com/j/{meeting_id}","password":"{}","settings":{{"use_pmi":false,"alternative_hosts":"","meeting_invitees":[{{"email":"{host_email}"}}],"join_before_host":false,"jbh_time":0}},"tracking_fields":[{{"field":"field1","value":"value1","visible":true}}]}}{old}}}}}"#,
                    rng.alnum(8)
                );
            }
            _ => {
                // recording.completed with 2–6 files of the usual types.
                const TYPES: &[(&str, &str, &str)] = &[
                    ("MP4", "MP4", "shared_screen_with_speaker_view"),
                    ("M4A", "M4A", "audio_only"),
                    ("TRANSCRIPT", "VTT", "audio_transcript"),
                    ("CHAT", "TXT", "chat_file"),
                    ("TIMELINE", "JSON", "timeline"),
                    ("MP4", "MP4", "gallery_view"),
                ];
                let files = 2 + rng.below(5) as usize;
                let rec_start = rfc3339(start);
                let rec_end = rfc3339(event_ts / 1000 - 60);
                let mut list = String::with_capacity(files * 520);
                let mut total = 0u64;
                for (i, (file_type, ext, kind)) in TYPES.iter().take(files).enumerate() {
                    let size = 1_000 + rng.below(500_000_000);
                    total += size;
                    if i > 0 {
                        list.push(',');
                    }
                    let token = rng.alnum(27);
                    let _ = write!(
                        list,
                        r#"{{"id":"{}","meeting_id":"{uuid}","recording_start":"{rec_start}","recording_end":"{rec_end}","file_type":"{file_type}","file_size":{size},"file_extension":"{ext}","play_url":"https://example.com/rec/play/{token}","download_url":"https://example.com/rec/download/{token}?access_token={}","status":"completed","recording_type":"{kind}"}}"#,
                        rng.uuid(),
                        rng.alnum(40)
                    );
                }
                let _ = write!(
                    s,
                    r#"{{"event":"recording.completed","event_ts":{event_ts},"payload":{{"account_id":"{account}","object":{{"id":{meeting_id},"uuid":"{uuid}","host_id":"{host_id}","account_id":"{account}","topic":"{topic}","type":2,"start_time":"{start_time}","timezone":"America/Los_Angeles","host_email":"{host_email}","duration":60,"password":"{}","share_url":"https://example.com/rec/share/{}","total_size":{total},"recording_count":{files},"recording_files":[{list}]}}}},"download_token":"eyJ{}"}}"#,
                    rng.alnum(6),
                    rng.alnum(40),
                    rng.alnum(400)
                );
            }
        }
        s
    }
}

/// A webhook as ingest would write it to the raw topic: key and headers of the raw contract.
pub struct RawRecord {
    pub key: Option<String>,
    pub body: Vec<u8>,
    /// (name, value) in the order ingest writes them.
    pub headers: Vec<(&'static str, String)>,
}

impl RawRecord {
    /// What ingest publishes for `webhook`, received at `received_at_ms`, signed with `secret`.
    pub fn of(webhook: Webhook, secret: &str, received_at_ms: i64) -> RawRecord {
        let envelope: Value = serde_json::from_slice(&webhook.body).expect("generated JSON");
        let ts = (received_at_ms / 1000).to_string();
        let signature = zoomstream_ingest::verify::sign(secret, &ts, &webhook.body);
        use zoomstream_schemas::raw::headers as h;
        RawRecord {
            key: raw::partition_key(&envelope),
            headers: vec![
                (h::APP, webhook.app.as_str().to_owned()),
                (h::EVENT, webhook.event.to_owned()),
                (h::EVENT_ID, raw::event_id(webhook.app, &envelope)),
                (h::RECEIVED_AT, received_at_ms.to_string()),
                (h::ZM_REQUEST_TIMESTAMP, ts),
                (h::ZM_SIGNATURE, signature),
            ],
            body: webhook.body,
        }
    }
}

/// `n` raw records of the mix (the backlog every drain scenario reads).
pub fn backlog(n: usize, seed: u64, secret: &str) -> Vec<RawRecord> {
    let mut generator = Generator::new(seed);
    let now = now_ms();
    (0..n)
        .map(|_| RawRecord::of(generator.next(), secret, now))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_of_the_mix_is_valid_json_and_varies() {
        let mut g = Generator::new(7);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2000 {
            let w = g.next();
            let v: Value = serde_json::from_slice(&w.body).expect("valid JSON");
            assert_eq!(v["event"], w.event);
            assert!(seen.insert(raw::event_id(w.app, &v)), "event ids repeat");
        }
        for &(event, _) in MIX {
            let v: Value = serde_json::from_str(&g.body(event, 1_700_000_000_000)).unwrap();
            assert!(v["payload"]["object"].is_object(), "{event}");
        }
    }

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_626_212_691), "2021-07-13T21:44:51Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
