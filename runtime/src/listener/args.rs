//! The connection settings every HTTP listener takes, flattened into each service's config.

use std::time::Duration;

/// Timeouts and caps of a service's HTTP listener: what an internet-facing service needs so
/// that idle, half-sent or too many connections cannot take it down (RELIABILITY.md, "Hostile
/// clients").
#[derive(Debug, Clone, clap::Args)]
pub struct ListenerArgs {
    /// How long a client may take to send a request's headers (from the connection's first
    /// byte, and between requests on a kept-alive connection) before the connection is closed;
    /// in milliseconds.
    #[arg(
        long,
        env = "ZOOMSTREAM_HEADER_READ_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub header_read_timeout_ms: u64,

    /// How long a connection may pass no byte either way before it is closed, in milliseconds.
    /// Bounds a stalled request body and a stalled response; must exceed the SSE keep-alive.
    #[arg(long, env = "ZOOMSTREAM_IDLE_TIMEOUT_MS", default_value_t = 60_000)]
    pub idle_timeout_ms: u64,

    /// Most open connections; beyond, new connections are closed at once. Lowered at start to
    /// what the process's file-descriptor limit leaves room for (with a warning).
    #[arg(long, env = "ZOOMSTREAM_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// Most open connections from one client address: one host cannot take more than a quarter
    /// of the connections (behind a proxy or load balancer every client has the proxy's
    /// address: raise this to `max_connections` there).
    #[arg(
        long,
        env = "ZOOMSTREAM_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 1024
    )]
    pub max_connections_per_address: usize,
}

/// Settings that cannot run.
#[derive(Debug, thiserror::Error)]
#[error("{0} must be greater than zero")]
pub struct ListenerArgsError(pub &'static str);

impl ListenerArgs {
    pub fn validate(&self) -> Result<(), ListenerArgsError> {
        for (name, value) in [
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("max_connections", self.max_connections as u64),
            (
                "max_connections_per_address",
                self.max_connections_per_address as u64,
            ),
        ] {
            if value == 0 {
                return Err(ListenerArgsError(name));
            }
        }
        Ok(())
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
}
