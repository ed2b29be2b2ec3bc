use super::*;
use serde_json::json;
use std::collections::HashSet;

fn me() -> UserIdentity {
    UserIdentity {
        user_id: Some("me-id".into()),
        email: Some("Me@Example.com".into()),
    }
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn table_has_every_seed_row_in_order() {
    let rows = &events()[..82];
    assert_eq!(rows[0].name, "account.created");
    assert_eq!(rows[81].name, "webinar.participant_left");
    let unique: HashSet<_> = events().iter().map(|d| d.name).collect();
    assert_eq!(
        unique.len(),
        events().len(),
        "names are unique after the typo fixes, families included"
    );
    for def in rows {
        assert!(
            def.zoom || def.zoom_admin,
            "{} is offered by some app",
            def.name
        );
        match def.variant {
            None => assert_eq!(def.name, def.wire_event),
            Some(v) => assert_eq!(def.name, format!("{}.{}", def.wire_event, v.suffix())),
        }
        assert_eq!(lookup(def.name), Some(def));
    }
}

#[test]
fn seed_typos_are_resolved_from_their_descriptions() {
    for (name, description) in [
        (
            "recording.renamed.for_me",
            "Recording renamed for an event where I was the host",
        ),
        ("recording.recovered.by_me", "Recording recovered by me"),
        (
            "recording.recovered.for_me",
            "Recording recovered for an event where I was the host",
        ),
        (
            "webinar.deleted.for_me",
            "Webinar deleted where I'm the host",
        ),
    ] {
        let def = lookup(name).expect(name);
        assert_eq!(def.description, description);
        assert!(def.zoom && !def.zoom_admin);
    }
    // The undecorated rows stay the Admin app's.
    for name in [
        "recording.renamed",
        "recording.recovered",
        "webinar.deleted",
    ] {
        let def = lookup(name).expect(name);
        assert!(!def.zoom && def.zoom_admin, "{name}");
    }
}

#[test]
fn table_ticks_are_kept_as_written() {
    let def = lookup("webinar.sharing_started.host").unwrap();
    assert!(def.offered_by(App::ZOOM) && def.offered_by(App::ZOOM_ADMIN));
    let def = lookup("meeting.sharing_started.host").unwrap();
    assert!(def.offered_by(App::ZOOM) && !def.offered_by(App::ZOOM_ADMIN));
    assert!(
        !events()[..82]
            .iter()
            .any(|d| d.name == "meeting.participant_left"),
        "the seed lacks it"
    );
    let left = lookup("meeting.participant_left").expect("added with the families");
    assert!(left.zoom && left.zoom_admin);
    assert!(lookup("nope").is_none());
}

#[test]
fn plain_events_classify_as_themselves() {
    let e = json!({"event": "meeting.started", "payload": {"object": {"id": 1}}});
    assert_eq!(classify(App::ZOOM, &e, &me()), names(&["meeting.started"]));
    assert_eq!(
        classify(App::ZOOM_ADMIN, &e, &me()),
        names(&["meeting.started"])
    );
    // Known to the catalogue but offered by the other app only: nothing.
    let e = json!({"event": "user.created", "payload": {}});
    assert!(classify(App::ZOOM, &e, &me()).is_empty());
    assert_eq!(
        classify(App::ZOOM_ADMIN, &e, &me()),
        names(&["user.created"])
    );
}

#[test]
fn unknown_wire_events_pass_through_for_extra_events() {
    let e = json!({"event": "phone.future_event_2027", "payload": {}});
    assert_eq!(
        classify(App::ZOOM, &e, &me()),
        names(&["phone.future_event_2027"])
    );
    assert_eq!(
        classify(App::ZOOM_ADMIN, &e, &me()),
        names(&["phone.future_event_2027"])
    );
    assert!(classify(App::ZOOM, &json!({"payload": {}}), &me()).is_empty());
    assert!(classify(App::ZOOM, &json!({"event": 5}), &me()).is_empty());
}

#[test]
fn by_me_matches_operator_id_or_email() {
    let by_id = json!({"event": "meeting.created",
        "payload": {"operator_id": "me-id", "object": {"host_id": "other"}}});
    assert_eq!(
        classify(App::ZOOM, &by_id, &me()),
        names(&["meeting.created.by_me"])
    );
    let by_email = json!({"event": "meeting.created",
        "payload": {"operator": "me@EXAMPLE.com", "object": {"host_id": "other"}}});
    assert_eq!(
        classify(App::ZOOM, &by_email, &me()),
        names(&["meeting.created.by_me"])
    );
    let other = json!({"event": "meeting.created",
        "payload": {"operator": "x@example.com", "operator_id": "x", "object": {"host_id": "other"}}});
    assert!(classify(App::ZOOM, &other, &me()).is_empty());
    // The Admin app has no variants: it gets the wire event.
    assert_eq!(
        classify(App::ZOOM_ADMIN, &by_id, &me()),
        names(&["meeting.created"])
    );
}

#[test]
fn for_me_matches_the_host() {
    let mine = json!({"event": "recording.trashed",
        "payload": {"operator_id": "x", "object": {"host_id": "me-id"}}});
    assert_eq!(
        classify(App::ZOOM, &mine, &me()),
        names(&["recording.trashed.for_me"])
    );
    let theirs = json!({"event": "recording.trashed",
        "payload": {"operator_id": "x", "object": {"host_id": "y"}}});
    assert!(classify(App::ZOOM, &theirs, &me()).is_empty());
    let both = json!({"event": "webinar.deleted",
        "payload": {"operator_id": "me-id", "object": {"host_id": "me-id"}}});
    assert_eq!(
        classify(App::ZOOM, &both, &me()),
        names(&["webinar.deleted.by_me", "webinar.deleted.for_me"])
    );
    let renamed = json!({"event": "recording.renamed",
        "payload": {"object": {"host_id": 42}}});
    let numeric = UserIdentity {
        user_id: Some("42".into()),
        email: None,
    };
    assert_eq!(
        classify(App::ZOOM, &renamed, &numeric),
        names(&["recording.renamed.for_me"])
    );
}

#[test]
fn an_unknown_identity_never_matches() {
    let e = json!({"event": "meeting.deleted",
        "payload": {"operator": "", "operator_id": "", "object": {"host_id": ""}}});
    assert!(classify(App::ZOOM, &e, &UserIdentity::default()).is_empty());
    let empty = UserIdentity {
        user_id: Some(String::new()),
        email: Some(String::new()),
    };
    assert!(classify(App::ZOOM, &e, &empty).is_empty());
}

#[test]
fn sharing_variants_compare_the_sharer_with_the_host() {
    let host = json!({"event": "meeting.sharing_started", "payload": {"object": {
        "host_id": "h1", "participant": {"user_id": "16778240", "id": "h1"}}}});
    assert_eq!(
        classify(App::ZOOM, &host, &me()),
        names(&["meeting.sharing_started.host"])
    );
    assert_eq!(
        classify(App::ZOOM_ADMIN, &host, &me()),
        names(&["meeting.sharing_started"])
    );
    let guest = json!({"event": "meeting.sharing_ended", "payload": {"object": {
        "host_id": "h1", "participant": {"user_id": "16778241", "id": ""}}}});
    assert_eq!(
        classify(App::ZOOM, &guest, &me()),
        names(&["meeting.sharing_ended.participant"])
    );
    let by_email = json!({"event": "meeting.sharing_started", "payload": {"object": {
        "host_id": "h1", "host_email": "Host@x.com", "participant": {"email": "host@x.com"}}}});
    assert_eq!(
        classify(App::ZOOM, &by_email, &me()),
        names(&["meeting.sharing_started.host"])
    );
    // Without a participant or a host id, neither variant is claimed.
    let unknown =
        json!({"event": "meeting.sharing_started", "payload": {"object": {"host_id": "h1"}}});
    assert!(classify(App::ZOOM, &unknown, &me()).is_empty());
    let unknown = json!({"event": "meeting.sharing_started", "payload": {"object": {
        "participant": {"id": "h1"}}}});
    assert!(classify(App::ZOOM, &unknown, &me()).is_empty());
}

#[test]
fn webinar_sharing_gives_base_and_variant_to_both_apps() {
    let host = json!({"event": "webinar.sharing_started", "payload": {"object": {
        "host_id": "h1", "participant": {"id": "h1"}}}});
    let expected = names(&["webinar.sharing_started", "webinar.sharing_started.host"]);
    assert_eq!(classify(App::ZOOM, &host, &me()), expected);
    assert_eq!(classify(App::ZOOM_ADMIN, &host, &me()), expected);
    let attendee = json!({"event": "webinar.sharing_started", "payload": {"object": {
        "host_id": "h1", "participant": {"id": "a2"}}}});
    assert_eq!(
        classify(App::ZOOM_ADMIN, &attendee, &me()),
        names(&[
            "webinar.sharing_started",
            "webinar.sharing_started.participant"
        ])
    );
}

#[test]
fn row_50_is_spelled_as_zoom_sends_it_and_the_seed_spelling_is_an_alias() {
    assert_eq!(events()[49].name, "recording.registration_created");
    assert!(lookup("recording.registration_completed").is_none());
    assert_eq!(
        alias_of("recording.registration_completed"),
        Some("recording.registration_created")
    );
    let e = json!({"event": "recording.registration_created", "payload": {}});
    assert_eq!(
        classify(App::ZOOM, &e, &me()),
        names(&["recording.registration_created"])
    );
}

#[test]
fn every_family_row_is_a_wire_event_offered_by_some_app_and_cited() {
    let mut rows = 0;
    for family in FAMILIES {
        assert!(
            !family.cited.is_empty() && !family.rows.is_empty(),
            "{}",
            family.title
        );
        for def in family.rows {
            rows += 1;
            assert_eq!(def.name, def.wire_event);
            assert!(def.variant.is_none() && (def.zoom || def.zoom_admin));
            assert_eq!(lookup(def.name), Some(def));
        }
    }
    assert_eq!(events().len(), 82 + rows);
    let phone: Vec<_> = events()
        .iter()
        .filter(|d| d.name.starts_with("phone."))
        .collect();
    assert_eq!(phone.len(), 42, "Pipedream's PHONE_EVENT_TYPES");
    let e = json!({"event": "phone.callee_ringing", "payload": {}});
    assert_eq!(
        classify(App::ZOOM_ADMIN, &e, &me()),
        names(&["phone.callee_ringing"])
    );
    // Zoom Rooms are account-level: the user-level app is offered none of them.
    let e = json!({"event": "zoomroom.alert", "payload": {}});
    assert!(classify(App::ZOOM, &e, &me()).is_empty());
    assert_eq!(
        classify(App::ZOOM_ADMIN, &e, &me()),
        names(&["zoomroom.alert"])
    );
}
