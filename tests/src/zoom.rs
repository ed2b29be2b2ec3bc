//! Zoom's side: the fixtures copied from its documentation, signing as Zoom does, posting
//! webhooks with its headers.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// The directory of the fixtures copied from Zoom's documentation.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/zoom")
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name))
        .unwrap_or_else(|e| panic!("reading fixture {name}: {e}"))
}

/// The webhook fixtures (event payloads, not the headers example or the validation exchange).
pub fn event_fixtures() -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json") && !n.starts_with('_') && !n.starts_with("endpoint."))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| (n.clone(), fixture(&n)))
        .collect()
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A request exactly as Zoom sends it: body, timestamp and signature over both.
pub struct Signed {
    pub body: Vec<u8>,
    pub timestamp: String,
    pub signature: String,
}

/// The `encryptedToken` Zoom expects for `plain_token`: hex HMAC-SHA256 with the secret,
/// computed here independently of ingest's verifier.
pub fn encrypted_token(secret: &str, plain_token: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(plain_token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub fn sign(secret: &str, body: &[u8]) -> Signed {
    sign_at(secret, body, now_secs())
}

pub fn sign_at(secret: &str, body: &[u8], timestamp: u64) -> Signed {
    let timestamp = timestamp.to_string();
    let signature = zoomstream_ingest::verify::sign(secret, &timestamp, body);
    Signed {
        body: body.to_vec(),
        timestamp,
        signature,
    }
}

/// Posts a signed webhook with Zoom's headers.
pub async fn post_signed(
    client: &reqwest::Client,
    url: &str,
    signed: &Signed,
    request_id: &str,
) -> reqwest::Response {
    client
        .post(url)
        .header("content-type", "application/json; charset=utf-8")
        .header("user-agent", "Zoom Marketplace/1.0a")
        .header("x-zm-request-timestamp", &signed.timestamp)
        .header("x-zm-signature", &signed.signature)
        .header("x-zm-request-id", request_id)
        .body(signed.body.clone())
        .send()
        .await
        .expect("ingest answers")
}

/// The fixtures of the families added since the seed, with the shipped source each reaches on
/// the Zoom app and on the Zoom Admin app (`None`: the app is not offered that family).
pub const FAMILY_FIXTURES: [(&str, Option<&str>, Option<&str>); 14] = [
    (
        "chat_message.sent.json",
        Some("team-chat"),
        Some("admin-team-chat"),
    ),
    (
        "meeting.chat_message_sent.json",
        Some("chat-messages"),
        Some("admin-chat-messages"),
    ),
    (
        "meeting.converted_to_webinar.json",
        Some("meeting-activity"),
        Some("admin-meeting-activity"),
    ),
    (
        "meeting.participant_joined_breakout_room.json",
        Some("meeting-activity"),
        Some("admin-meeting-activity"),
    ),
    (
        "meeting.participant_left.json",
        Some("custom-meeting-activity"),
        None,
    ),
    (
        "meeting.participant_role_changed.json",
        Some("meeting-activity"),
        Some("admin-meeting-activity"),
    ),
    (
        "meeting.rtms_started.json",
        Some("meeting-activity"),
        Some("admin-meeting-activity"),
    ),
    (
        "meeting.summary_completed.json",
        Some("meeting-summaries"),
        Some("admin-meeting-summaries"),
    ),
    (
        "phone.callee_ringing.json",
        Some("phone-events"),
        Some("admin-phone-events"),
    ),
    (
        "recording.archive_files_completed.json",
        Some("recording-activity"),
        Some("admin-recording-activity"),
    ),
    (
        "recording.registration_created.json",
        Some("recording-activity"),
        Some("admin-recording-activity"),
    ),
    (
        "user.presence_status_updated.json",
        Some("user-activity"),
        Some("admin-user-activity"),
    ),
    (
        "webinar.permanently_deleted.json",
        Some("webinar-activity"),
        Some("admin-webinar-activity"),
    ),
    ("zoomroom.alert.json", None, Some("admin-rooms")),
];
