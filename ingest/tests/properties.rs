//! Property tests (the project's fuzzing) of what ingest does with untrusted bytes: the
//! signature check and the strict JSON parser never panic, accept only what Zoom signed, and
//! parse exactly what serde_json parses when keys are unique. `PROPTEST_CASES=N` sets the budget.

use std::time::Duration;

use proptest::prelude::*;
use zoomstream_ingest::body::parse_strict;
use zoomstream_ingest::verify::{sign, Verifier};

const NOW: u64 = 1_700_000_000;

fn verifier() -> Verifier {
    Verifier::new("prop-secret".to_owned(), Duration::from_secs(300))
}

proptest! {
    #[test]
    fn verification_never_panics_on_any_headers(ts in prop::option::of(".{0,24}"), sig in prop::option::of(".{0,80}"), body in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = verifier().verify(ts.as_deref(), sig.as_deref(), &body, NOW);
    }

    #[test]
    fn only_the_exact_signed_bytes_verify(body in prop::collection::vec(any::<u8>(), 1..512), flip in any::<prop::sample::Index>(), bit in 0u8..8, skew in 0u64..300) {
        let ts = (NOW - skew).to_string();
        let sig = sign("prop-secret", &ts, &body);
        prop_assert!(verifier().verify(Some(&ts), Some(&sig), &body, NOW).is_ok());
        let mut changed = body.clone();
        changed[flip.index(body.len())] ^= 1 << bit;
        prop_assert!(verifier().verify(Some(&ts), Some(&sig), &changed, NOW).is_err());
        let other = sign("other-secret", &ts, &body);
        prop_assert!(verifier().verify(Some(&ts), Some(&other), &body, NOW).is_err());
    }

    #[test]
    fn strict_parsing_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_strict(&bytes);
    }

    #[test]
    fn strict_parsing_agrees_with_serde_json_on_unique_keys(text in r#"\{("[a-c]{1,2}":(-?[0-9]{1,6}|"[a-z]{0,4}"|true|null|\[[0-9,]{0,6}\]),){0,6}"z":0\}"#) {
        let lenient: Result<serde_json::Value, _> = serde_json::from_str(&text);
        match parse_strict(text.as_bytes()) {
            Ok(strict) => prop_assert_eq!(Some(strict), lenient.ok()),
            Err(err) => prop_assert!(lenient.is_err() || err.to_string().contains("duplicate key"), "{err}"),
        }
    }
}
