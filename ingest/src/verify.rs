//! Zoom's webhook verification, exactly as Zoom documents it:
//! `x-zm-signature = "v0=" + hex(HMAC_SHA256(secret, "v0:" + x-zm-request-timestamp + ":" + raw_body))`,
//! with a replay window on the timestamp, and the URL-validation challenge answer.

use std::time::Duration;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::secrets::SecretTokens;

type HmacSha256 = Hmac<Sha256>;

/// Why a request is not from Zoom. Every variant is answered 401; the message says which check
/// failed without revealing anything about the secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("missing x-zm-signature header")]
    MissingSignature,
    #[error("missing x-zm-request-timestamp header")]
    MissingTimestamp,
    #[error("x-zm-request-timestamp is not a unix time in seconds")]
    BadTimestamp,
    #[error("x-zm-request-timestamp is outside the accepted window of {window_secs} s")]
    StaleTimestamp { window_secs: u64 },
    #[error("x-zm-signature is not of the form v0=<hex sha256>")]
    MalformedSignature,
    #[error("x-zm-signature does not match the body")]
    SignatureMismatch,
}

impl VerifyError {
    /// A bounded label for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::MissingSignature => "missing_signature",
            VerifyError::MissingTimestamp => "missing_timestamp",
            VerifyError::BadTimestamp => "bad_timestamp",
            VerifyError::StaleTimestamp { .. } => "stale_timestamp",
            VerifyError::MalformedSignature => "malformed_signature",
            VerifyError::SignatureMismatch => "signature_mismatch",
        }
    }
}

/// Verifies requests for one Zoom app with that app's secret tokens (several during a rotation).
pub struct Verifier {
    secrets: SecretTokens,
    window: Duration,
}

fn mac(secret: &SecretString) -> HmacSha256 {
    HmacSha256::new_from_slice(secret.expose_secret().as_bytes())
        .expect("HMAC takes keys of any length")
}

impl Verifier {
    pub fn new(secrets: impl Into<SecretTokens>, window: Duration) -> Self {
        Verifier {
            secrets: secrets.into(),
            window,
        }
    }

    /// Checks the signature headers against the raw body. `now_secs` is the current unix time.
    /// Returns the verified signature (for replay detection).
    pub fn verify(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now_secs: u64,
    ) -> Result<[u8; 32], VerifyError> {
        let signature = signature.ok_or(VerifyError::MissingSignature)?;
        let timestamp = timestamp.ok_or(VerifyError::MissingTimestamp)?;
        let ts: u64 = timestamp
            .trim()
            .parse()
            .map_err(|_| VerifyError::BadTimestamp)?;
        if now_secs.abs_diff(ts) > self.window.as_secs() {
            return Err(VerifyError::StaleTimestamp {
                window_secs: self.window.as_secs(),
            });
        }
        let mut given = [0u8; 32];
        signature
            .strip_prefix("v0=")
            .and_then(|h| hex::decode_to_slice(h, &mut given).ok())
            .ok_or(VerifyError::MalformedSignature)?;
        // Every token is tried (current first); verify_slice compares in constant time.
        let matches = |secret: &SecretString| {
            let mut m = mac(secret);
            m.update(b"v0:");
            m.update(timestamp.as_bytes());
            m.update(b":");
            m.update(body);
            m.verify_slice(&given).is_ok()
        };
        if self.secrets.all().iter().any(matches) {
            Ok(given)
        } else {
            Err(VerifyError::SignatureMismatch)
        }
    }

    /// The `encryptedToken` Zoom expects in answer to `endpoint.url_validation`: always with
    /// the current token, the one Zoom validates the endpoint with.
    pub fn encrypt_token(&self, plain_token: &str) -> String {
        let mut mac = mac(self.secrets.current());
        mac.update(plain_token.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// Signs a body as Zoom does; for tests, load generators and the sender CLI.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier() -> Verifier {
        Verifier::new(
            SecretString::from("s3cret".to_owned()),
            Duration::from_secs(300),
        )
    }

    #[test]
    fn accepts_what_zoom_signs() {
        let body = br#"{"event":"meeting.started"}"#;
        let sig = sign("s3cret", "1000", body);
        let expected: [u8; 32] = hex::decode(&sig[3..]).unwrap().try_into().unwrap();
        assert_eq!(
            verifier().verify(Some("1000"), Some(&sig), body, 1000),
            Ok(expected)
        );
        assert_eq!(
            verifier().verify(Some("1000"), Some(&sig), body, 1300),
            Ok(expected)
        );
    }

    #[test]
    fn rejects_each_kind_of_forgery() {
        let body = br#"{"event":"meeting.started"}"#;
        let sig = sign("s3cret", "1000", body);
        let v = verifier();
        assert_eq!(
            v.verify(Some("1000"), None, body, 1000),
            Err(VerifyError::MissingSignature)
        );
        assert_eq!(
            v.verify(None, Some(&sig), body, 1000),
            Err(VerifyError::MissingTimestamp)
        );
        assert_eq!(
            v.verify(Some("x"), Some(&sig), body, 1000),
            Err(VerifyError::BadTimestamp)
        );
        assert!(matches!(
            v.verify(Some("1000"), Some(&sig), body, 1301),
            Err(VerifyError::StaleTimestamp { .. })
        ));
        assert!(matches!(
            v.verify(Some("1000"), Some(&sig), body, 699),
            Err(VerifyError::StaleTimestamp { .. })
        ));
        assert_eq!(
            v.verify(Some("1000"), Some("v1=00"), body, 1000),
            Err(VerifyError::MalformedSignature)
        );
        assert_eq!(
            v.verify(Some("1000"), Some(&sig[..sig.len() - 2]), body, 1000),
            Err(VerifyError::MalformedSignature)
        );
        assert_eq!(
            v.verify(Some("1001"), Some(&sig), body, 1000),
            Err(VerifyError::SignatureMismatch)
        );
        assert_eq!(
            v.verify(
                Some("1000"),
                Some(&sig),
                br#"{"event":"meeting.startex"}"#,
                1000
            ),
            Err(VerifyError::SignatureMismatch)
        );
        let other = sign("other", "1000", body);
        assert_eq!(
            v.verify(Some("1000"), Some(&other), body, 1000),
            Err(VerifyError::SignatureMismatch)
        );
    }

    #[test]
    fn during_a_rotation_every_token_verifies_and_validation_uses_the_current_one() {
        let body = br#"{"event":"meeting.started"}"#;
        let rotating = Verifier::new(
            SecretTokens::parse("new-secret,s3cret").unwrap(),
            Duration::from_secs(300),
        );
        for secret in ["new-secret", "s3cret"] {
            let sig = sign(secret, "1000", body);
            assert!(rotating
                .verify(Some("1000"), Some(&sig), body, 1000)
                .is_ok());
        }
        let other = sign("retired", "1000", body);
        assert_eq!(
            rotating.verify(Some("1000"), Some(&other), body, 1000),
            Err(VerifyError::SignatureMismatch)
        );
        let current = Verifier::new(
            SecretString::from("new-secret".to_owned()),
            Duration::from_secs(300),
        );
        assert_eq!(rotating.encrypt_token("abc"), current.encrypt_token("abc"));
        assert_ne!(
            rotating.encrypt_token("abc"),
            verifier().encrypt_token("abc")
        );
    }

    #[test]
    fn url_validation_token_is_hmac_of_plain_token() {
        // Zoom's documented example: secret "SECRET_TOKEN" (fixtures/zoom/endpoint.url_validation*.json).
        let v = Verifier::new(
            SecretString::from("SECRET_TOKEN".to_owned()),
            Duration::from_secs(300),
        );
        assert_eq!(
            v.encrypt_token("qgg8vlvZRS6UYooatFL8Aw"),
            "23a89b634c017e5364a1c8d9c8ea909b60dd5599e2bb04bb1558d9c3a121faa5"
        );
        // Independently computed with Python's hmac module.
        assert_eq!(
            verifier().encrypt_token("abc"),
            "4f2f30aaf4a57bd60ab473c8e9c2cdfefc186723d4727ed6f31f04353c91389a"
        );
    }
}
