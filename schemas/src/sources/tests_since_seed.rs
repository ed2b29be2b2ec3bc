//! What the sources file gained with the families added since the seed: the old row 50 name,
//! family wildcards, wildcards that set events aside, and Pipedream's filters.

use std::path::PathBuf;

use serde_json::json;

use super::{parse, Problem, SourcesFile, Warning};
use crate::catalogue::UserIdentity;

fn shipped_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(app: &str, events: &str, schema: &str, options: &str) -> Result<SourcesFile, String> {
    let text = format!(
        "[[source]]\nname = \"s\"\napp = \"{app}\"\nevents = {events}\ntopic = \"t\"\nschema = \"{schema}\"\n[source.options]\n{options}\n"
    );
    parse(&text, &shipped_dir()).map_err(|e| e.to_string())
}

fn me() -> UserIdentity {
    UserIdentity {
        user_id: Some("me-id".into()),
        email: None,
    }
}

#[test]
fn the_seed_spelling_of_row_50_is_taken_as_todays_with_a_warning() {
    let file = load(
        "zoom",
        r#"["recording.registration_completed"]"#,
        "envelope.avsc",
        "",
    )
    .unwrap();
    let source = &file.sources[0];
    assert_eq!(source.events, ["recording.registration_created"]);
    assert!(source.takes("recording.registration_created"));
    assert_eq!(
        file.warnings[0].warning,
        Warning::Alias {
            old: "recording.registration_completed".into(),
            new: "recording.registration_created"
        }
    );
    assert_eq!(file.warnings[0].line, Some(4));
}

#[test]
fn a_wildcard_names_a_whole_family() {
    let file = load("zoom", r#"["phone.*"]"#, "envelope.avsc", "").unwrap();
    let source = &file.sources[0];
    assert!(source.takes("phone.callee_ringing") && source.takes("phone.sms_sent"));
    // One Zoom adds later still reaches the family's source.
    assert!(source.takes("phone.future_event_2027"));
    assert!(!source.takes("meeting.started"));
    assert!(file.warnings.is_empty());
    // Zoom Rooms are account-level.
    let err = load("zoom", r#"["zoomroom.*"]"#, "envelope.avsc", "").unwrap_err();
    assert!(err.contains("matches no event of the Zoom app"), "{err}");
    assert!(load("zoom-admin", r#"["zoomroom.*"]"#, "envelope.avsc", "").is_ok());
}

#[test]
fn meeting_wildcards_leave_summaries_chat_and_rtms_to_their_own_sources() {
    let file = load("zoom", r#"["meeting.*"]"#, "meeting.avsc", "").unwrap();
    let source = &file.sources[0];
    assert!(source.takes("meeting.started"));
    for set_aside in [
        "meeting.summary_completed",
        "meeting.chat_message_sent",
        "meeting.rtms_started",
        "meeting.aic_transcript_completed",
    ] {
        assert!(!source.takes(set_aside), "{set_aside}");
    }
    let warning = file.warnings[0].to_string();
    assert!(
        warning.contains("leaves out meeting.summary_completed"),
        "{warning}"
    );
    // Named one by one they are an error: the shape cannot carry them.
    let err = load(
        "zoom",
        r#"["meeting.summary_completed"]"#,
        "meeting.avsc",
        "",
    )
    .unwrap_err();
    assert!(
        err.contains("cannot be carried by the Meeting shape"),
        "{err}"
    );
    // The envelope takes them all.
    let file = load("zoom", r#"["meeting.*"]"#, "envelope.avsc", "").unwrap();
    assert!(file.sources[0].takes("meeting.summary_completed"));
}

#[test]
fn meeting_and_webinar_ids_filter_by_the_object_id() {
    let file = load(
        "zoom-admin",
        r#"["recording.completed"]"#,
        "recording_file.avsc",
        "meeting_ids = [85746065432, \"123\"]",
    )
    .unwrap();
    let options = &file.sources[0].options;
    assert_eq!(
        options.meeting_ids.as_deref(),
        Some(&["85746065432".to_owned(), "123".to_owned()][..])
    );
    let of = |object| json!({"event": "recording.completed", "payload": {"object": object}});
    let nobody = UserIdentity::default();
    assert!(options.accepts(&of(json!({"id": 85746065432_u64})), &nobody));
    assert!(options.accepts(&of(json!({"id": "123"})), &nobody));
    assert!(!options.accepts(&of(json!({"id": 9})), &nobody));
    assert!(!options.accepts(&json!({"payload": {}}), &nobody));
    // Summaries name the meeting in meeting_id.
    assert!(options.accepts(&of(json!({"meeting_id": 123})), &nobody));

    let file = load(
        "zoom-admin",
        r#"["webinar.ended"]"#,
        "webinar.avsc",
        "webinar_ids = [\"777\"]",
    )
    .unwrap();
    let options = &file.sources[0].options;
    assert!(options.accepts(&of(json!({"id": 777})), &nobody));
    assert!(!options.accepts(&of(json!({"id": 778})), &nobody));

    let err = load(
        "zoom",
        r#"["webinar.ended"]"#,
        "webinar.avsc",
        "meeting_ids = [1]",
    )
    .unwrap_err();
    assert!(err.contains("unknown option \"meeting_ids\""), "{err}");
    let err = load(
        "zoom",
        r#"["meeting.ended"]"#,
        "meeting.avsc",
        "meeting_ids = []",
    )
    .unwrap_err();
    assert!(err.contains("must be a non-empty list of ids"), "{err}");
}

#[test]
fn hosted_by_me_keeps_the_configured_users_meetings_on_the_zoom_app_only() {
    let file = load(
        "zoom",
        r#"["meeting.ended"]"#,
        "meeting.avsc",
        "hosted_by_me = true",
    )
    .unwrap();
    let source = &file.sources[0];
    assert!(source.needs_user());
    assert_eq!(file.needing_user(), ["s"]);
    let hosted_by = |host: &str| json!({"event": "meeting.ended", "payload": {"object": {"id": 1, "host_id": host}}});
    assert!(source.options.accepts(&hosted_by("me-id"), &me()));
    assert!(!source.options.accepts(&hosted_by("someone"), &me()));
    assert!(!source
        .options
        .accepts(&hosted_by("me-id"), &UserIdentity::default()));

    let err = load(
        "zoom-admin",
        r#"["meeting.ended"]"#,
        "meeting.avsc",
        "hosted_by_me = true",
    )
    .unwrap_err();
    assert!(err.contains("left out on a zoom-admin source"), "{err}");
}

#[test]
fn sources_deciding_by_the_user_are_named_for_the_start_up_warning() {
    let by_me = load("zoom", r#"["meeting.created.by_me"]"#, "meeting.avsc", "").unwrap();
    assert_eq!(by_me.needing_user(), ["s"]);
    let wildcard = load("zoom", r#"["recording.*"]"#, "envelope.avsc", "").unwrap();
    assert_eq!(
        wildcard.needing_user(),
        ["s"],
        "recording.* covers for_me rows"
    );
    let plain = load("zoom", r#"["meeting.started"]"#, "meeting.avsc", "").unwrap();
    assert!(plain.needing_user().is_empty());
    let admin = load("zoom-admin", r#"["meeting.*"]"#, "envelope.avsc", "").unwrap();
    assert!(
        admin.needing_user().is_empty(),
        "the admin app has no variants"
    );
    assert!(matches!(
        parse("", &shipped_dir()).unwrap_err().issues()[0].problem,
        Problem::NoSources
    ));
}
