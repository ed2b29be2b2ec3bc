//! The Zoom event catalogue: every event of the seed's event table (Pipedream's list of Zoom and
//! Zoom Admin events, `seed`) and of the families Zoom documents since (`families`, each with
//! its citation), which app offers each, and how the user-level variants are recognised.
//!
//! Zoom sends only *wire* events (`meeting.created`). The user-level Zoom app additionally offers
//! *variants* (`meeting.created.by_me`, `meeting.sharing_started.host`, …) that Zoom never sends
//! as such: they are the wire event plus a condition on its payload, decided by [`classify`].

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{App, AppKind};

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
        match app.kind() {
            AppKind::Zoom => self.zoom,
            AppKind::ZoomAdmin => self.zoom_admin,
        }
    }
}

pub(super) const fn row(
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

mod families;
mod seed;

pub use families::{Family, FAMILIES};

/// Every row: the seed's table in its order, then the families in `FAMILIES` order.
pub fn events() -> &'static [EventDef] {
    static ALL: OnceLock<Vec<EventDef>> = OnceLock::new();
    ALL.get_or_init(|| {
        seed::SEED
            .iter()
            .chain(FAMILIES.iter().flat_map(|family| family.rows))
            .cloned()
            .collect()
    })
}

/// Whether `name` is a row of a family added since the seed's table (see `families`).
pub fn added_since_seed(name: &str) -> bool {
    FAMILIES
        .iter()
        .any(|family| family.rows.iter().any(|def| def.name == name))
}

/// Names the catalogue once used, with the name they stand for today. A sources file may still
/// use them (with a warning at load).
pub const ALIASES: &[(&str, &str)] = &[
    // Seed row 50: Zoom sends `recording.registration_created`.
    (
        "recording.registration_completed",
        "recording.registration_created",
    ),
];

/// The current name for an old name in [`ALIASES`].
pub fn alias_of(name: &str) -> Option<&'static str> {
    ALIASES
        .iter()
        .find(|(old, _)| *old == name)
        .map(|(_, new)| *new)
}

fn by_name() -> &'static HashMap<&'static str, &'static EventDef> {
    static INDEX: OnceLock<HashMap<&'static str, &'static EventDef>> = OnceLock::new();
    INDEX.get_or_init(|| events().iter().map(|def| (def.name, def)).collect())
}

/// The row named `name` (a catalogue name, variants included).
pub fn lookup(name: &str) -> Option<&'static EventDef> {
    by_name().get(name).copied()
}

/// Whether Zoom's wire event `wire` is covered by the catalogue, as a row or as the base of
/// variant rows. Events it is not (ones Zoom added later, phone events, …) can only be consumed
/// through a source's `extra_events`.
pub fn knows_wire_event(wire: &str) -> bool {
    by_wire().contains_key(wire)
}

/// The rows of each wire event, in catalogue order (classify runs once per webhook).
fn by_wire() -> &'static HashMap<&'static str, Vec<&'static EventDef>> {
    static INDEX: OnceLock<HashMap<&'static str, Vec<&'static EventDef>>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut index: HashMap<&'static str, Vec<&'static EventDef>> = HashMap::new();
        for def in events() {
            index.entry(def.wire_event).or_default().push(def);
        }
        index
    })
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
    let Some(rows) = by_wire().get(wire) else {
        return vec![wire.to_owned()];
    };
    let payload = envelope.get("payload");
    rows.iter()
        .filter(|def| def.offered_by(app))
        .filter(|def| match def.variant {
            None => true,
            Some(variant) => variant_holds(variant, payload, me),
        })
        .map(|def| def.name.to_owned())
        .collect()
}

/// Whether the configured user hosts the meeting or webinar of `payload`: its `object.host_id` /
/// `host_email`, or, where the object is not the meeting's (summaries), `meeting_host_id` /
/// `meeting_host_email`. The `hosted_by_me` source option.
pub fn hosted_by(me: &UserIdentity, payload: Option<&Value>) -> bool {
    if variant_holds(Variant::ForMe, payload, me) {
        return true;
    }
    let object = payload.and_then(|p| p.get("object"));
    let field = |key: &str| object.and_then(|o| o.get(key)).and_then(json_str);
    me.is_user_id(field("meeting_host_id").as_deref())
        || me.is_email(field("meeting_host_email").as_deref())
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
mod tests;
