//! The Zoom event catalogue: every event of the seed's event table (Pipedream's list of Zoom and
//! Zoom Admin events), which app offers it, and how the user-level variants are recognised.
//!
//! Zoom sends only *wire* events (`meeting.created`). The user-level Zoom app additionally offers
//! *variants* (`meeting.created.by_me`, `meeting.sharing_started.host`, …) that Zoom never sends
//! as such: they are the wire event plus a condition on its payload, decided by [`classify`].

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::App;

/// The condition that turns a wire event into a user-level variant of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// `*.by_me`: the operator of the change is the configured user.
    ByMe,
    /// `*.for_me`: the host of the meeting/webinar/recording is the configured user.
    ForMe,
    /// `*.sharing_started.host` / `*.sharing_ended.host`: the sharer is the host.
    Host,
    /// `*.sharing_started.participant` / `*.sharing_ended.participant`: the sharer is not the host.
    Participant,
}

impl Variant {
    /// The suffix the variant adds to the wire event name (`by_me`, `for_me`, `host`, `participant`).
    pub fn suffix(self) -> &'static str {
        match self {
            Variant::ByMe => "by_me",
            Variant::ForMe => "for_me",
            Variant::Host => "host",
            Variant::Participant => "participant",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.suffix())
    }
}

/// One row of the event table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDef {
    /// The catalogue name, as used in the sources file (`meeting.created.by_me`).
    pub name: &'static str,
    /// The seed's description of the row.
    pub description: &'static str,
    /// Offered by the user-level Zoom app.
    pub zoom: bool,
    /// Offered by the account-level Zoom Admin app.
    pub zoom_admin: bool,
    /// The event Zoom actually sends for this row (`meeting.created` for `meeting.created.by_me`).
    pub wire_event: &'static str,
    /// The condition on the wire event, for the user-level variants; `None` for a wire event.
    pub variant: Option<Variant>,
}

impl EventDef {
    /// Whether `app` offers this event (the table's ✓ in that app's column).
    pub fn offered_by(&self, app: App) -> bool {
        match app {
            App::Zoom => self.zoom,
            App::ZoomAdmin => self.zoom_admin,
        }
    }
}

const fn row(
    name: &'static str,
    description: &'static str,
    zoom: bool,
    zoom_admin: bool,
    wire_event: &'static str,
    variant: Option<Variant>,
) -> EventDef {
    EventDef {
        name,
        description,
        zoom,
        zoom_admin,
        wire_event,
        variant,
    }
}

use Variant::{ByMe, ForMe, Host, Participant};

/// The seed's event table, row for row and in its order. Four rows are renamed from the seed,
/// whose names there are duplicates: their descriptions name the variant they stand for.
#[rustfmt::skip]
static EVENTS: [EventDef; 82] = [
    row("account.created", "New Sub Account created", false, true, "account.created", None),
    row("account.updated", "An Account or a Sub Account's profile is updated", false, true, "account.updated", None),
    row("account.settings_updated", "An account or a Sub Account’s settings are updated", false, true, "account.settings_updated", None),
    row("account.disassociated", "Sub Account Disassociated from a Master Account", false, true, "account.disassociated", None),
    row("meeting.alert", "Meeting service issue encountered", true, true, "meeting.alert", None),
    row("meeting.created", "Meeting created in my Zoom account", false, true, "meeting.created", None),
    row("meeting.created.by_me", "Meeting created by me", true, false, "meeting.created", Some(ByMe)),
    row("meeting.created.for_me", "Meeting created where I'm the host", true, false, "meeting.created", Some(ForMe)),
    row("meeting.updated", "Meeting updated", true, true, "meeting.updated", None),
    row("meeting.deleted", "Meeting deleted in my Zoom account", false, true, "meeting.deleted", None),
    row("meeting.deleted.by_me", "Meeting deleted by me", true, false, "meeting.deleted", Some(ByMe)),
    row("meeting.deleted.for_me", "Meeting deleted where I was the host", true, false, "meeting.deleted", Some(ForMe)),
    row("meeting.started", "Meeting started", true, true, "meeting.started", None),
    row("meeting.ended", "Meeting ended", true, true, "meeting.ended", None),
    row("meeting.registration_created", "User registered for meeting", true, true, "meeting.registration_created", None),
    row("meeting.registration_approved", "Meeting registration approved", true, true, "meeting.registration_approved", None),
    row("meeting.registration_cancelled", "Meeting registration cancelled", true, true, "meeting.registration_cancelled", None),
    row("meeting.registration_denied", "Meeting registration denied", true, true, "meeting.registration_denied", None),
    row("meeting.sharing_started", "A host or attendee shared their screen", false, true, "meeting.sharing_started", None),
    row("meeting.sharing_started.host", "A host shared their screen", true, false, "meeting.sharing_started", Some(Host)),
    row("meeting.sharing_started.participant", "An attendee shared their screen", true, false, "meeting.sharing_started", Some(Participant)),
    row("meeting.sharing_ended", "A host or attendee stopped sharing their screen", false, true, "meeting.sharing_ended", None),
    row("meeting.sharing_ended.host", "A host stopped sharing their screen", true, false, "meeting.sharing_ended", Some(Host)),
    row("meeting.sharing_ended.participant", "An attendee stopped sharing their screen", true, false, "meeting.sharing_ended", Some(Participant)),
    row("meeting.participant_jbh_joined", "Attendee joined meeting before host", true, true, "meeting.participant_jbh_joined", None),
    row("meeting.participant_jbh_waiting", "Attendee waiting for host to join meeting", true, true, "meeting.participant_jbh_waiting", None),
    row("meeting.participant_joined", "Host or attendee joined meeting", true, true, "meeting.participant_joined", None),
    row("meeting.participant_joined_waiting_room", "Participant joined waiting room", true, true, "meeting.participant_joined_waiting_room", None),
    row("meeting.participant_admitted", "Participant was admitted to meeting from waiting room", true, true, "meeting.participant_admitted", None),
    row("meeting.participant_put_in_waiting_room", "Participant placed in waiting room from meeting", true, true, "meeting.participant_put_in_waiting_room", None),
    row("meeting.participant_left_waiting_room", "Participant left waiting room, or was removed", true, true, "meeting.participant_left_waiting_room", None),
    row("recording.started", "Recording started", true, true, "recording.started", None),
    row("recording.paused", "Recording paused", true, true, "recording.paused", None),
    row("recording.resumed", "Recording resumed", true, true, "recording.resumed", None),
    row("recording.stopped", "Recording stopped", true, true, "recording.stopped", None),
    row("recording.completed", "Recording completed", true, true, "recording.completed", None),
    row("recording.renamed", "Recording renamed", false, true, "recording.renamed", None),
    row("recording.renamed.by_me", "Recording renamed by me", true, false, "recording.renamed", Some(ByMe)),
    // Seed typo: listed as `recording.renamed`; the description names the `.for_me` variant.
    row("recording.renamed.for_me", "Recording renamed for an event where I was the host", true, false, "recording.renamed", Some(ForMe)),
    row("recording.trashed", "Recording trashed", false, true, "recording.trashed", None),
    row("recording.trashed.by_me", "Recording trashed by me", true, false, "recording.trashed", Some(ByMe)),
    row("recording.trashed.for_me", "Recording trashed for an event where I was the host", true, false, "recording.trashed", Some(ForMe)),
    row("recording.deleted", "Recording deleted", false, true, "recording.deleted", None),
    row("recording.deleted.by_me", "Recording deleted by me", true, false, "recording.deleted", Some(ByMe)),
    row("recording.deleted.for_me", "Recording deleted for an event where I was the host", true, false, "recording.deleted", Some(ForMe)),
    row("recording.recovered", "Recording recovered", false, true, "recording.recovered", None),
    // Seed typo: listed as `recording.recovered`; the description names the `.by_me` variant.
    row("recording.recovered.by_me", "Recording recovered by me", true, false, "recording.recovered", Some(ByMe)),
    // Seed typo: listed as `recording.recovered`; the description names the `.for_me` variant.
    row("recording.recovered.for_me", "Recording recovered for an event where I was the host", true, false, "recording.recovered", Some(ForMe)),
    row("recording.transcript_completed", "Recording transcript completed", true, true, "recording.transcript_completed", None),
    row("recording.registration_completed", "User registered for an on-demand recording", true, true, "recording.registration_completed", None),
    row("recording.registration_approved", "User approved to view recording", true, true, "recording.registration_approved", None),
    row("recording.registration_denied", "User denied access to cloud recording", true, true, "recording.registration_denied", None),
    row("user.created", "User created", false, true, "user.created", None),
    row("user.invitation_accepted", "User accepted account invitation", false, true, "user.invitation_accepted", None),
    row("user.updated", "User profile updated", true, true, "user.updated", None),
    row("user.settings_updated", "User settings updated", true, true, "user.settings_updated", None),
    row("user.activated", "User activated", true, true, "user.activated", None),
    row("user.deactivated", "User deactivated", false, true, "user.deactivated", None),
    row("user.disassociated", "User disassociated", false, true, "user.disassociated", None),
    row("user.deleted", "User deleted", false, true, "user.deleted", None),
    row("user.signed_in", "User signed in", true, true, "user.signed_in", None),
    row("user.signed_out", "User signed out", true, true, "user.signed_out", None),
    row("webinar.created", "Webinar created in my account", false, true, "webinar.created", None),
    row("webinar.created.by_me", "Webinar created by me", true, false, "webinar.created", Some(ByMe)),
    row("webinar.created.for_me", "Webinar created where I'm the host", true, false, "webinar.created", Some(ForMe)),
    row("webinar.updated", "Webinar updated", true, true, "webinar.updated", None),
    row("webinar.deleted", "Webinar deleted in my account", false, true, "webinar.deleted", None),
    row("webinar.deleted.by_me", "Webinar deleted by me", true, false, "webinar.deleted", Some(ByMe)),
    // Seed typo: listed as `webinar.deleted`; the description names the `.for_me` variant.
    row("webinar.deleted.for_me", "Webinar deleted where I'm the host", true, false, "webinar.deleted", Some(ForMe)),
    row("webinar.started", "Webinar started", true, true, "webinar.started", None),
    row("webinar.ended", "Webinar ended", true, true, "webinar.ended", None),
    row("webinar.alert", "Webinar service issue encountered", true, true, "webinar.alert", None),
    row("webinar.sharing_started", "A host or attendee shared their screen", true, true, "webinar.sharing_started", None),
    row("webinar.sharing_started.host", "A host shared their screen", true, true, "webinar.sharing_started", Some(Host)),
    row("webinar.sharing_started.participant", "An attendee shared their screen", true, true, "webinar.sharing_started", Some(Participant)),
    row("webinar.sharing_ended", "A host or attendee stopped sharing their screen", true, true, "webinar.sharing_ended", None),
    row("webinar.registration_created", "User registered for webinar", true, true, "webinar.registration_created", None),
    row("webinar.registration_approved", "Webinar registration approved", true, true, "webinar.registration_approved", None),
    row("webinar.registration_cancelled", "Webinar registration cancelled", true, true, "webinar.registration_cancelled", None),
    row("webinar.registration_denied", "Webinar registration denied", true, true, "webinar.registration_denied", None),
    row("webinar.participant_joined", "Host or attendee joined webinar", true, true, "webinar.participant_joined", None),
    row("webinar.participant_left", "Host or attendee left webinar", true, true, "webinar.participant_left", None),
];

/// Every row of the event table, in the seed's order.
pub fn events() -> &'static [EventDef] {
    &EVENTS
}

fn by_name() -> &'static HashMap<&'static str, &'static EventDef> {
    static INDEX: OnceLock<HashMap<&'static str, &'static EventDef>> = OnceLock::new();
    INDEX.get_or_init(|| EVENTS.iter().map(|def| (def.name, def)).collect())
}

/// The row named `name` (a catalogue name, variants included).
pub fn lookup(name: &str) -> Option<&'static EventDef> {
    by_name().get(name).copied()
}

/// Whether Zoom's wire event `wire` is covered by the catalogue, as a row or as the base of
/// variant rows. Events it is not (ones Zoom added later, phone events, …) can only be consumed
/// through a source's `extra_events`.
pub fn knows_wire_event(wire: &str) -> bool {
    EVENTS.iter().any(|def| def.wire_event == wire)
}

/// The configured user of the user-level Zoom app, against which `by_me` / `for_me` are decided.
/// Either field may be unknown; a variant whose comparison needs a missing field never matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserIdentity {
    /// The user's Zoom user id (compared with `operator_id` and `host_id`).
    pub user_id: Option<String>,
    /// The user's email (compared case-insensitively with `operator` and `host_email`).
    pub email: Option<String>,
}

impl UserIdentity {
    fn is_user_id(&self, candidate: Option<&str>) -> bool {
        matches!((self.user_id.as_deref(), candidate), (Some(me), Some(c)) if !me.is_empty() && me == c)
    }

    fn is_email(&self, candidate: Option<&str>) -> bool {
        matches!((self.email.as_deref(), candidate),
            (Some(me), Some(c)) if !me.is_empty() && emails_equal(me, c))
    }
}

/// Email addresses compare case-insensitively (in practice; the local part is case-sensitive
/// only in theory, and Zoom itself treats them case-insensitively).
fn emails_equal(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

/// The catalogue names a webhook satisfies for `app`, in catalogue order:
///
/// - the wire event itself, if `app` offers it;
/// - every variant row of the wire event that `app` offers and whose condition holds
///   (see [`Variant`]);
/// - the wire event itself if the catalogue does not know it at all, so that sources can ask for
///   it through `extra_events`.
///
/// An envelope without a string `event` satisfies nothing.
pub fn classify(app: App, envelope: &Value, me: &UserIdentity) -> Vec<String> {
    let Some(wire) = envelope.get("event").and_then(Value::as_str) else {
        return Vec::new();
    };
    if !knows_wire_event(wire) {
        return vec![wire.to_owned()];
    }
    let payload = envelope.get("payload");
    EVENTS
        .iter()
        .filter(|def| def.wire_event == wire && def.offered_by(app))
        .filter(|def| match def.variant {
            None => true,
            Some(variant) => variant_holds(variant, payload, me),
        })
        .map(|def| def.name.to_owned())
        .collect()
}

/// Whether the payload satisfies the condition of `variant`.
pub fn variant_holds(variant: Variant, payload: Option<&Value>, me: &UserIdentity) -> bool {
    let str_at = |v: Option<&Value>, key: &str| v.and_then(|v| v.get(key)).and_then(json_str);
    let object = payload.and_then(|p| p.get("object"));
    match variant {
        Variant::ByMe => {
            me.is_user_id(str_at(payload, "operator_id").as_deref())
                || me.is_email(str_at(payload, "operator").as_deref())
        }
        Variant::ForMe => {
            me.is_user_id(str_at(object, "host_id").as_deref())
                || me.is_email(str_at(object, "host_email").as_deref())
        }
        Variant::Host => sharer_is_host(object) == Some(true),
        Variant::Participant => sharer_is_host(object) == Some(false),
    }
}

/// Whether the sharer (`object.participant`) is the host (`object.host_id`); `None` when the
/// payload lacks either, so that neither `.host` nor `.participant` is claimed on a guess.
fn sharer_is_host(object: Option<&Value>) -> Option<bool> {
    let object = object?;
    let host_id = object
        .get("host_id")
        .and_then(json_str)
        .filter(|s| !s.is_empty())?;
    let participant = object.get("participant").filter(|p| p.is_object())?;
    let field = |key: &str| {
        participant
            .get(key)
            .and_then(json_str)
            .filter(|s| !s.is_empty())
    };
    let by_id = ["id", "user_id"]
        .iter()
        .any(|key| field(key).as_deref() == Some(host_id.as_str()));
    let by_email = match (field("email"), object.get("host_email").and_then(json_str)) {
        (Some(sharer), Some(host)) => emails_equal(&sharer, &host),
        _ => false,
    };
    Some(by_id || by_email)
}

/// A JSON scalar as a string: ids are numbers in some events and strings in others.
fn json_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
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
        let rows = events();
        assert_eq!(rows.len(), 82);
        assert_eq!(rows[0].name, "account.created");
        assert_eq!(rows[81].name, "webinar.participant_left");
        let unique: HashSet<_> = rows.iter().map(|d| d.name).collect();
        assert_eq!(unique.len(), 82, "names are unique after the typo fixes");
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
        assert!(def.offered_by(App::Zoom) && def.offered_by(App::ZoomAdmin));
        let def = lookup("meeting.sharing_started.host").unwrap();
        assert!(def.offered_by(App::Zoom) && !def.offered_by(App::ZoomAdmin));
        assert!(
            lookup("meeting.participant_left").is_none(),
            "the seed lacks it"
        );
        assert!(lookup("nope").is_none());
    }

    #[test]
    fn plain_events_classify_as_themselves() {
        let e = json!({"event": "meeting.started", "payload": {"object": {"id": 1}}});
        assert_eq!(classify(App::Zoom, &e, &me()), names(&["meeting.started"]));
        assert_eq!(
            classify(App::ZoomAdmin, &e, &me()),
            names(&["meeting.started"])
        );
        // Known to the catalogue but offered by the other app only: nothing.
        let e = json!({"event": "user.created", "payload": {}});
        assert!(classify(App::Zoom, &e, &me()).is_empty());
        assert_eq!(
            classify(App::ZoomAdmin, &e, &me()),
            names(&["user.created"])
        );
    }

    #[test]
    fn unknown_wire_events_pass_through_for_extra_events() {
        let e = json!({"event": "phone.callee_ringing", "payload": {}});
        assert_eq!(
            classify(App::Zoom, &e, &me()),
            names(&["phone.callee_ringing"])
        );
        assert_eq!(
            classify(App::ZoomAdmin, &e, &me()),
            names(&["phone.callee_ringing"])
        );
        assert!(classify(App::Zoom, &json!({"payload": {}}), &me()).is_empty());
        assert!(classify(App::Zoom, &json!({"event": 5}), &me()).is_empty());
    }

    #[test]
    fn by_me_matches_operator_id_or_email() {
        let by_id = json!({"event": "meeting.created",
            "payload": {"operator_id": "me-id", "object": {"host_id": "other"}}});
        assert_eq!(
            classify(App::Zoom, &by_id, &me()),
            names(&["meeting.created.by_me"])
        );
        let by_email = json!({"event": "meeting.created",
            "payload": {"operator": "me@EXAMPLE.com", "object": {"host_id": "other"}}});
        assert_eq!(
            classify(App::Zoom, &by_email, &me()),
            names(&["meeting.created.by_me"])
        );
        let other = json!({"event": "meeting.created",
            "payload": {"operator": "x@example.com", "operator_id": "x", "object": {"host_id": "other"}}});
        assert!(classify(App::Zoom, &other, &me()).is_empty());
        // The Admin app has no variants: it gets the wire event.
        assert_eq!(
            classify(App::ZoomAdmin, &by_id, &me()),
            names(&["meeting.created"])
        );
    }

    #[test]
    fn for_me_matches_the_host() {
        let mine = json!({"event": "recording.trashed",
            "payload": {"operator_id": "x", "object": {"host_id": "me-id"}}});
        assert_eq!(
            classify(App::Zoom, &mine, &me()),
            names(&["recording.trashed.for_me"])
        );
        let theirs = json!({"event": "recording.trashed",
            "payload": {"operator_id": "x", "object": {"host_id": "y"}}});
        assert!(classify(App::Zoom, &theirs, &me()).is_empty());
        let both = json!({"event": "webinar.deleted",
            "payload": {"operator_id": "me-id", "object": {"host_id": "me-id"}}});
        assert_eq!(
            classify(App::Zoom, &both, &me()),
            names(&["webinar.deleted.by_me", "webinar.deleted.for_me"])
        );
        let renamed = json!({"event": "recording.renamed",
            "payload": {"object": {"host_id": 42}}});
        let numeric = UserIdentity {
            user_id: Some("42".into()),
            email: None,
        };
        assert_eq!(
            classify(App::Zoom, &renamed, &numeric),
            names(&["recording.renamed.for_me"])
        );
    }

    #[test]
    fn an_unknown_identity_never_matches() {
        let e = json!({"event": "meeting.deleted",
            "payload": {"operator": "", "operator_id": "", "object": {"host_id": ""}}});
        assert!(classify(App::Zoom, &e, &UserIdentity::default()).is_empty());
        let empty = UserIdentity {
            user_id: Some(String::new()),
            email: Some(String::new()),
        };
        assert!(classify(App::Zoom, &e, &empty).is_empty());
    }

    #[test]
    fn sharing_variants_compare_the_sharer_with_the_host() {
        let host = json!({"event": "meeting.sharing_started", "payload": {"object": {
            "host_id": "h1", "participant": {"user_id": "16778240", "id": "h1"}}}});
        assert_eq!(
            classify(App::Zoom, &host, &me()),
            names(&["meeting.sharing_started.host"])
        );
        assert_eq!(
            classify(App::ZoomAdmin, &host, &me()),
            names(&["meeting.sharing_started"])
        );
        let guest = json!({"event": "meeting.sharing_ended", "payload": {"object": {
            "host_id": "h1", "participant": {"user_id": "16778241", "id": ""}}}});
        assert_eq!(
            classify(App::Zoom, &guest, &me()),
            names(&["meeting.sharing_ended.participant"])
        );
        let by_email = json!({"event": "meeting.sharing_started", "payload": {"object": {
            "host_id": "h1", "host_email": "Host@x.com", "participant": {"email": "host@x.com"}}}});
        assert_eq!(
            classify(App::Zoom, &by_email, &me()),
            names(&["meeting.sharing_started.host"])
        );
        // Without a participant or a host id, neither variant is claimed.
        let unknown =
            json!({"event": "meeting.sharing_started", "payload": {"object": {"host_id": "h1"}}});
        assert!(classify(App::Zoom, &unknown, &me()).is_empty());
        let unknown = json!({"event": "meeting.sharing_started", "payload": {"object": {
            "participant": {"id": "h1"}}}});
        assert!(classify(App::Zoom, &unknown, &me()).is_empty());
    }

    #[test]
    fn webinar_sharing_gives_base_and_variant_to_both_apps() {
        let host = json!({"event": "webinar.sharing_started", "payload": {"object": {
            "host_id": "h1", "participant": {"id": "h1"}}}});
        let expected = names(&["webinar.sharing_started", "webinar.sharing_started.host"]);
        assert_eq!(classify(App::Zoom, &host, &me()), expected);
        assert_eq!(classify(App::ZoomAdmin, &host, &me()), expected);
        let attendee = json!({"event": "webinar.sharing_started", "payload": {"object": {
            "host_id": "h1", "participant": {"id": "a2"}}}});
        assert_eq!(
            classify(App::ZoomAdmin, &attendee, &me()),
            names(&[
                "webinar.sharing_started",
                "webinar.sharing_started.participant"
            ])
        );
    }
}
