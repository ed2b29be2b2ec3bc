//! The HTTP ceiling: an axum server whose webhook handler reads the same bodies and answers at
//! once, without verifying or publishing. Same runtime defaults (multi-threaded tokio) as ingest.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

pub async fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    let app =
        Router::new()
            .route(
                "/webhooks/{app}",
                post(|body: Bytes| async move {
                    Json(json!({"status": "accepted", "bytes": body.len()}))
                }),
            )
            .route(
                "/readyz",
                get(|| async { Json(json!({"status": "ready"})) }),
            );
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
