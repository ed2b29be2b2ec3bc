//! Property test (the project's fuzzing) of the routing step: whatever bytes and headers sit on
//! the raw topic, routing never panics, and every output is either a record of a matching
//! source or a dead letter with a reason. `PROPTEST_CASES=N` sets the budget.

use std::path::PathBuf;
use std::sync::LazyLock;

use proptest::prelude::*;
use zoomstream_processors::route::{Output, RawMessage, Route, Router};
use zoomstream_schemas::catalogue::UserIdentity;
use zoomstream_schemas::{sources, App, Apps};

static ROUTER: LazyLock<Router> = LazyLock::new(|| {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas/sources.toml");
    let routes = sources::load(&path)
        .expect("the shipped sources load")
        .sources
        .into_iter()
        .map(Route::single_object)
        .collect();
    Router::new(
        routes,
        Apps::builtin().with_user(
            App::ZOOM,
            UserIdentity {
                user_id: Some("me".into()),
                email: None,
            },
        ),
    )
});

fn payload() -> impl Strategy<Value = Vec<u8>> {
    let fixtures: Vec<Vec<u8>> = [
        "meeting.created",
        "meeting.ended",
        "meeting.participant_joined",
        "meeting.started",
        "recording.completed",
    ]
    .iter()
    .map(|n| {
        std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join(format!("../tests/fixtures/zoom/{n}.json")),
        )
        .unwrap()
    })
    .collect();
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        // Real webhooks with bytes changed: mostly still JSON, often of the wrong shape.
        (
            prop::sample::select(fixtures),
            prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4)
        )
            .prop_map(|(mut body, edits)| {
                for (at, byte) in edits {
                    let i = at.index(body.len());
                    body[i] = byte;
                }
                body
            }),
    ]
}

proptest! {
    #[test]
    fn routing_never_panics_and_always_explains(payload in prop::option::of(payload()), app in prop::option::of(prop_oneof![Just("zoom".to_owned()), Just("zoom-admin".to_owned()), ".{0,8}"])) {
        let msg = RawMessage { payload: payload.as_deref(), app: app.as_deref(), event_id: None, received_at: Some("x") };
        for output in ROUTER.route(&msg) {
            match output {
                Output::Record { route, record, bytes } => {
                    prop_assert_eq!(Some(route.source.app.as_str()), app.as_deref());
                    prop_assert!(!record.event_id.is_empty());
                    prop_assert!(zoomstream_schemas::avro::decode(&bytes, &route.source.schema).is_ok());
                }
                Output::DeadLetter(dead) => {
                    // The reason is a DeadLetterReason: one of a bounded set by its type.
                    prop_assert!(!dead.detail.is_empty());
                }
            }
        }
    }
}
