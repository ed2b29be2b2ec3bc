//! HTTP probes of a running service: readiness and Prometheus pages.

use std::time::Duration;

use crate::wait::wait_for;

/// Waits until an ingest's `/readyz` (at `readyz_url`) answers 200.
pub async fn wait_ingest_ready(client: &reqwest::Client, readyz_url: &str) {
    wait_for(
        "ingest /readyz to answer 200",
        Duration::from_secs(30),
        || async {
            client
                .get(readyz_url)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await;
}

/// The body of a GET of `url` (e.g. a `/metrics` page), as text.
pub async fn get_text(client: &reqwest::Client, url: &str) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

/// Reads a counter or gauge from a Prometheus text page (0 when absent).
pub fn metric(page: &str, name_with_labels: &str) -> f64 {
    page.lines()
        .find_map(|l| {
            l.strip_prefix(name_with_labels)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .map(|v| v.trim().parse().expect("a number"))
        .unwrap_or(0.0)
}
