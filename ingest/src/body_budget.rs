//! The memory request bodies may take together while they are read and handled, a bound apart
//! from the in-flight slots of publishing: the connection caps alone would let 4096 connections
//! hold a 4 MiB body each. Each data frame is charged as it arrives, so a slow client holds only
//! what it actually sent; a body that would go over the budget is answered 503 (Zoom retries),
//! and the charge is given back when its request is answered.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use prometheus::IntGauge;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The budget would be exceeded by this body.
#[derive(Debug, thiserror::Error)]
#[error("the bodies being received take the whole body budget")]
pub struct OverBudget;

#[derive(Clone)]
pub struct BodyBudget {
    used: Arc<AtomicUsize>,
    limit: usize,
    gauge: IntGauge,
}

/// What one request's body has been charged; given back when dropped.
pub struct Charge {
    used: Arc<AtomicUsize>,
    bytes: Arc<AtomicUsize>,
    gauge: IntGauge,
}

/// `inner`, charging each data frame to the budget.
pub struct Budgeted<B> {
    inner: B,
    used: Arc<AtomicUsize>,
    limit: usize,
    bytes: Arc<AtomicUsize>,
    gauge: IntGauge,
}

impl BodyBudget {
    /// `gauge` shows the bytes charged now.
    pub fn new(limit: usize, gauge: IntGauge) -> Self {
        BodyBudget {
            used: Arc::default(),
            limit,
            gauge,
        }
    }

    /// `body` charged to the budget; the charge lasts as long as the returned [`Charge`].
    pub fn wrap<B>(&self, body: B) -> (Budgeted<B>, Charge) {
        let bytes = Arc::new(AtomicUsize::new(0));
        let budgeted = Budgeted {
            inner: body,
            used: self.used.clone(),
            limit: self.limit,
            bytes: bytes.clone(),
            gauge: self.gauge.clone(),
        };
        let charge = Charge {
            used: self.used.clone(),
            bytes,
            gauge: self.gauge.clone(),
        };
        (budgeted, charge)
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        let bytes = self.bytes.swap(0, Ordering::SeqCst);
        self.used.fetch_sub(bytes, Ordering::SeqCst);
        self.gauge.sub(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
}

impl<B> Body for Budgeted<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(err))) => return Poll::Ready(Some(Err(err.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = frame.data_ref() {
            let n = data.len();
            let before = self.used.fetch_add(n, Ordering::SeqCst);
            if before + n > self.limit {
                self.used.fetch_sub(n, Ordering::SeqCst);
                return Poll::Ready(Some(Err(OverBudget.into())));
            }
            self.bytes.fetch_add(n, Ordering::SeqCst);
            self.gauge.add(i64::try_from(n).unwrap_or(i64::MAX));
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt as _, Full};

    use super::*;

    #[tokio::test]
    async fn bodies_share_the_budget_until_answered() {
        let gauge = IntGauge::new("t", "t").unwrap();
        let budget = BodyBudget::new(10, gauge.clone());
        let (first, first_charge) = budget.wrap(Full::new(Bytes::from_static(b"123456")));
        assert_eq!(first.collect().await.unwrap().to_bytes().len(), 6);
        assert_eq!(gauge.get(), 6);
        let (second, _) = budget.wrap(Full::new(Bytes::from_static(b"12345")));
        let refused = second.collect().await.expect_err("over the budget");
        assert!(refused.downcast_ref::<OverBudget>().is_some());
        drop(first_charge);
        assert_eq!(gauge.get(), 0);
        let (third, _third_charge) = budget.wrap(Full::new(Bytes::from_static(b"12345")));
        assert!(third.collect().await.is_ok(), "the budget came back");
    }
}
