//! A streaming Server-Sent Events client (reqwest), as a program reads a source's stream:
//! the `text/event-stream` format parsed as the HTML standard does, comments kept (the service
//! marks the switch to live events with `: live`).

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("data is not JSON ({e}): {}", self.data))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Event(SseEvent),
    Comment(String),
    Retry(u64),
}

/// The `text/event-stream` format, as the HTML standard parses it (enough of it: every field
/// this service sends, comments kept for the tests).
#[derive(Default)]
pub struct Parser {
    buf: Vec<u8>,
    pub event: Option<String>,
    pub data: Vec<String>,
    pub id: Option<String>,
}

impl Parser {
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Item> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(nl) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let line =
                String::from_utf8(self.buf[start..start + nl].to_vec()).expect("utf-8 stream");
            start += nl + 1;
            let line = line.strip_suffix('\r').unwrap_or(&line);
            if line.is_empty() {
                if !self.data.is_empty() || self.event.is_some() || self.id.is_some() {
                    out.push(Item::Event(SseEvent {
                        id: self.id.take(),
                        event: self.event.take().unwrap_or_else(|| "message".into()),
                        data: std::mem::take(&mut self.data).join("\n"),
                    }));
                }
                continue;
            }
            if let Some(comment) = line.strip_prefix(':') {
                out.push(Item::Comment(comment.trim_start().to_owned()));
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "event" => self.event = Some(value.to_owned()),
                "data" => self.data.push(value.to_owned()),
                "id" => self.id = Some(value.to_owned()),
                "retry" => out.push(Item::Retry(value.parse().expect("numeric retry"))),
                other => panic!("unexpected field {other:?}"),
            }
        }
        self.buf.drain(..start);
        out
    }
}

pub type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// A streaming client (reqwest), as a program would read the stream.
pub struct SseClient {
    body: ByteStream,
    parser: Parser,
    queue: VecDeque<Item>,
    pub last_id: Option<String>,
    ended: bool,
}

pub enum Auth<'a> {
    None,
    Bearer(&'a str),
    Query(&'a str),
}

pub async fn request(url: &str, auth: Auth<'_>, last_id: Option<&str>) -> reqwest::Response {
    let client = reqwest::Client::new();
    let mut request = match auth {
        Auth::Query(token) => {
            let sep = if url.contains('?') { '&' } else { '?' };
            client.get(format!("{url}{sep}access_token={token}"))
        }
        _ => client.get(url),
    };
    if let Auth::Bearer(token) = auth {
        request = request.bearer_auth(token);
    }
    if let Some(id) = last_id {
        request = request.header("last-event-id", id);
    }
    request
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("the SSE service answers")
}

impl SseClient {
    /// Connects with a bearer token.
    pub async fn connect(token: &str, url: &str, last_id: Option<&str>) -> SseClient {
        SseClient::connect_with(url, Auth::Bearer(token), last_id).await
    }

    pub async fn connect_with(url: &str, auth: Auth<'_>, last_id: Option<&str>) -> SseClient {
        let response = request(url, auth, last_id).await;
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            status,
            200,
            "{url}: {}",
            response.text().await.unwrap_or_default()
        );
        assert_eq!(content_type.as_deref(), Some("text/event-stream"));
        SseClient {
            body: Box::pin(response.bytes_stream()),
            parser: Parser::default(),
            queue: VecDeque::new(),
            last_id: last_id.map(str::to_owned),
            ended: false,
        }
    }

    /// The next item; `None` once the stream ended. Panics after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<Item> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(item) = self.queue.pop_front() {
                if let Item::Event(SseEvent { id: Some(id), .. }) = &item {
                    self.last_id = Some(id.clone());
                }
                return Some(item);
            }
            if self.ended {
                return None;
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => panic!("no SSE item within {timeout:?}"),
                Ok(None) | Ok(Some(Err(_))) => self.ended = true,
                Ok(Some(Ok(bytes))) => {
                    let items = self.parser.feed(&bytes);
                    self.queue.extend(items);
                }
            }
        }
    }

    pub async fn next_event(&mut self, timeout: Duration) -> SseEvent {
        loop {
            match self.next(timeout).await {
                Some(Item::Event(event)) => return event,
                Some(_) => continue,
                None => panic!("the stream ended while an event was expected"),
            }
        }
    }

    pub async fn events(&mut self, n: usize, timeout: Duration) -> Vec<SseEvent> {
        let mut events = Vec::with_capacity(n);
        while events.len() < n {
            events.push(self.next_event(timeout).await);
        }
        events
    }

    /// Reads until the `: live` comment: from then on, events come from the live feed.
    pub async fn wait_live(&mut self) -> Vec<Item> {
        let mut before = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                Instant::now() < deadline,
                "the stream did not go live within 60 s: {before:?}"
            );
            match self.next(Duration::from_secs(30)).await {
                Some(Item::Comment(c)) if c == "live" => return before,
                Some(item) => before.push(item),
                None => panic!("the stream ended before going live: {before:?}"),
            }
        }
    }
}
