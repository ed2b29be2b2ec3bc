use std::path::{Path, PathBuf};

use super::{load, parse, Issue, Problem, SourceOptions, SourcesError};
use crate::shape::Shape;
use crate::App;

/// The crate directory, where the shipped schemas live.
fn shipped_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch directory, removed on drop.
struct Scratch(tempfile::TempDir);

impl Scratch {
    fn new() -> Scratch {
        Scratch(tempfile::tempdir().unwrap())
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn issues(text: &str) -> Vec<Issue> {
    match parse(text, &shipped_dir()) {
        Ok(file) => panic!("expected errors, got {} sources", file.sources.len()),
        Err(e) => e.issues().to_vec(),
    }
}

fn one_issue(text: &str) -> Issue {
    let mut all = issues(text);
    assert_eq!(all.len(), 1, "{all:#?}");
    all.remove(0)
}

fn source_toml(events: &str, schema: &str) -> String {
    format!(
        "[[source]]\nname = \"s\"\napp = \"zoom\"\nevents = {events}\ntopic = \"zoom.s\"\nschema = \"{schema}\"\n"
    )
}

#[test]
fn the_shipped_file_loads() {
    let file = load(&shipped_dir().join("sources.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(file.warnings, [], "the shipped file needs no warning");
    assert_eq!(file.dir, shipped_dir());
    assert!(file.sources.len() >= 30);
    let rc = file.get("recording-completed").unwrap();
    assert_eq!(rc.shape, Shape::RecordingFile);
    assert_eq!(rc.topic, "zoom.recording-completed");
    assert_eq!(rc.options, SourceOptions::default());
    for source in &file.sources {
        assert!(
            source.topic.starts_with(&format!("{}.", source.app)),
            "{}",
            source.topic
        );
        // Topics read `<app>.<what>`: the admin- prefix of names is not repeated.
        let what = source.name.strip_prefix("admin-").unwrap_or(&source.name);
        assert_eq!(source.topic, format!("{}.{}", source.app, what));
        assert_eq!(
            source.app == App::ZOOM_ADMIN,
            source.name.starts_with("admin-"),
            "{}",
            source.name
        );
    }
    assert_eq!(
        file.for_app(App::ZOOM).count() + file.for_app(App::ZOOM_ADMIN).count(),
        file.sources.len()
    );
}

#[test]
fn a_good_source_is_read_whole() {
    let text = r#"
[[source]]
name = "recordings"
app = "zoom-admin"
events = ["recording.completed"]
topic = "zoom-admin.recordings"
schema = "recording_file.avsc"
description = "files"
[source.options]
include_chat = true
file_types = ["mp4", "Chat"]
"#;
    let file = parse(text, &shipped_dir()).unwrap();
    let source = &file.sources[0];
    assert_eq!(source.app, App::ZOOM_ADMIN);
    assert_eq!(
        source.schema_path,
        shipped_dir().join("recording_file.avsc")
    );
    assert_eq!(source.description.as_deref(), Some("files"));
    assert!(source.options.include_chat && !source.options.include_audio);
    assert_eq!(
        source.options.file_types,
        Some(vec!["MP4".to_owned(), "CHAT".to_owned()])
    );
    assert!(source.options.keeps_file_type("MP4") && !source.options.keeps_file_type("TRANSCRIPT"));
}

#[test]
fn file_type_flags_default_like_pipedream() {
    let mut options = SourceOptions::default();
    assert!(options.keeps_file_type("MP4") && options.keeps_file_type("TRANSCRIPT"));
    assert!(!options.keeps_file_type("M4A") && !options.keeps_file_type("CHAT"));
    options.include_audio = true;
    options.include_chat = true;
    assert!(options.keeps_file_type("M4A") && options.keeps_file_type("CHAT"));
}

#[test]
fn unknown_event_names_the_file_line_and_source() {
    let scratch = Scratch::new();
    let text = "\n[[source]]\nname = \"meeting-ended\"\napp = \"zoom\"\nevents = [\"meeting.endd\"]\ntopic = \"zoom.meeting-ended\"\nschema = \"meeting.avsc\"\n";
    for shape in Shape::ALL {
        scratch.write(shape.schema_file(), shape.builtin_schema());
    }
    let path = scratch.write("sources.toml", text);
    let err = load(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:5: source \"meeting-ended\": event \"meeting.endd\" is not in the Zoom event catalogue \
             (for events Zoom sends that the catalogue lacks, use extra_events)",
            path.display()
        )
    );
}

#[test]
fn events_of_the_other_app_are_explained() {
    let issue = one_issue(&source_toml(r#"["meeting.created"]"#, "meeting.avsc"));
    assert_eq!(issue.line, Some(4));
    assert_eq!(
        issue.to_string(),
        "line 4: source \"s\": event \"meeting.created\" is not offered by the Zoom app (it is a Zoom Admin \
         event; the Zoom app offers meeting.created.by_me, meeting.created.for_me)"
    );
    let text = source_toml(r#"["user.created"]"#, "user.avsc");
    assert!(matches!(
        one_issue(&text).problem,
        Problem::NotOffered { .. }
    ));
}

#[test]
fn wildcards_must_match_and_be_trailing() {
    let file = parse(
        &source_toml(r#"["meeting.*"]"#, "meeting.avsc"),
        &shipped_dir(),
    )
    .unwrap();
    let source = &file.sources[0];
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        source.matches(&names(&["meeting.created.by_me"])),
        Some("meeting.created.by_me")
    );
    assert_eq!(
        source.matches(&names(&["webinar.started", "meeting.started"])),
        Some("meeting.started")
    );
    assert_eq!(source.matches(&names(&["webinar.started"])), None);
    assert_eq!(
        source.select(App::ZOOM_ADMIN, &names(&["meeting.started"])),
        None
    );
    assert_eq!(
        source.select(App::ZOOM, &names(&["meeting.started"])),
        Some("meeting.started")
    );

    let issue = one_issue(&source_toml(r#"["account.*"]"#, "account.avsc"));
    assert_eq!(
        issue.problem,
        Problem::WildcardMatchesNothing {
            pattern: "account.*".into(),
            app_label: "Zoom".to_owned()
        }
    );
    let issue = one_issue(&source_toml(r#"["meet*ing.started"]"#, "meeting.avsc"));
    assert!(
        matches!(issue.problem, Problem::BadPattern { .. }),
        "{issue}"
    );
}

#[test]
fn star_takes_everything_but_needs_a_shape_that_carries_everything() {
    let file = parse(&source_toml(r#"["*"]"#, "envelope.avsc"), &shipped_dir()).unwrap();
    let names = vec!["phone.future_event_2027".to_owned()];
    assert_eq!(
        file.sources[0].matches(&names),
        Some("phone.future_event_2027")
    );
    let issue = one_issue(&source_toml(r#"["*"]"#, "meeting.avsc"));
    assert!(
        matches!(issue.problem, Problem::PatternCannotCarry { .. }),
        "{issue}"
    );
    assert!(issue.to_string().contains("and "), "{issue}");
}

#[test]
fn a_shape_must_carry_its_events() {
    let issue = one_issue(&source_toml(
        r#"["meeting.started"]"#,
        "recording_file.avsc",
    ));
    assert_eq!(
        issue.problem,
        Problem::ShapeCannotCarry {
            event: "meeting.started".into(),
            shape: Shape::RecordingFile,
            schema: shipped_dir().join("recording_file.avsc"),
        }
    );
    assert!(issue
        .to_string()
        .contains("it carries recording.completed and recording.transcript_completed"));
    let text = source_toml(
        r#"["recording.completed", "recording.transcript_completed"]"#,
        "recording_file.avsc",
    );
    assert!(parse(&text, &shipped_dir()).is_ok());
    let text = source_toml(
        r#"["meeting.sharing_started.host", "webinar.participant_left"]"#,
        "participant.avsc",
    );
    assert!(parse(&text, &shipped_dir()).is_ok());
    let issue = one_issue(&source_toml(r#"["meeting.started"]"#, "participant.avsc"));
    assert!(matches!(issue.problem, Problem::ShapeCannotCarry { .. }));
}

#[test]
fn extra_events_are_for_what_the_catalogue_lacks() {
    let ok = "[[source]]\nname = \"s\"\napp = \"zoom\"\nextra_events = [\"phone.future_event_2027\"]\ntopic = \"t\"\nschema = \"envelope.avsc\"\n";
    let file = parse(ok, &shipped_dir()).unwrap();
    assert!(file.sources[0].events.is_empty());
    assert!(file.sources[0].takes("phone.future_event_2027"));

    let text = ok.replace("phone.future_event_2027", "meeting.started");
    let issue = one_issue(&text);
    assert!(
        issue
            .to_string()
            .contains("is in the event catalogue: list it under events"),
        "{issue}"
    );
    let text = ok.replace("phone.future_event_2027", "meeting.created");
    assert!(matches!(
        one_issue(&text).problem,
        Problem::BadExtraEvent { .. }
    ));
    let text = ok.replace("phone.future_event_2027", "phone.*");
    assert!(one_issue(&text)
        .to_string()
        .contains("wildcards belong in events"));
    let text = ok.replace("envelope.avsc", "meeting.avsc");
    assert!(matches!(
        one_issue(&text).problem,
        Problem::ShapeCannotCarry { .. }
    ));
    // Sources written when the catalogue lacked meeting.participant_left keep loading, warned.
    let text = ok
        .replace("phone.future_event_2027", "meeting.participant_left")
        .replace("envelope", "participant");
    let file = parse(&text, &shipped_dir()).unwrap();
    assert!(file.sources[0].takes("meeting.participant_left"));
    assert!(file.warnings[0]
        .to_string()
        .contains("is in the event catalogue now"));
}

#[test]
fn names_and_topics_are_unique_and_well_formed() {
    let text = r#"
[[source]]
name = "a"
app = "zoom"
events = ["meeting.started"]
topic = "zoom.a"
schema = "meeting.avsc"

[[source]]
name = "a"
app = "zoom"
events = ["meeting.ended"]
topic = "zoom.a"
schema = "meeting.avsc"

[[source]]
name = "Bad_Name"
app = "zoom"
events = ["meeting.ended"]
topic = "bad topic"
schema = "meeting.avsc"
"#;
    let all = issues(text);
    let problems: Vec<_> = all.iter().map(|i| (i.line, i.problem.clone())).collect();
    assert_eq!(
        problems,
        vec![
            (
                Some(10),
                Problem::DuplicateName {
                    name: "a".into(),
                    first_line: 3
                }
            ),
            (
                Some(13),
                Problem::DuplicateTopic {
                    topic: "zoom.a".into(),
                    other: "a".into(),
                    first_line: 6
                }
            ),
            (Some(17), Problem::BadName("Bad_Name".into())),
            (
                Some(20),
                Problem::BadTopic {
                    topic: "bad topic".into()
                }
            ),
        ]
    );
    // Displayed one per line.
    let err = parse(text, &shipped_dir()).unwrap_err();
    assert_eq!(err.to_string().lines().count(), 4);
}

#[test]
fn all_problems_are_reported_in_line_order() {
    let text = r#"
[[source]]
name = "x"
app = "zoom-admin"
events = ["meeting.endd", "meeting.created.by_me", "meeting.started", "meeting.started"]
topic = "t1"
schema = "missing.avsc"
[source.options]
include_audio = true

[[source]]
name = "y"
app = "zoom-pro"
events = ["meeting.started"]
topic = "t2"
schema = "meeting.avsc"
"#;
    let all = issues(text);
    let kinds: Vec<_> = all.iter().map(|i| i.line).collect();
    assert_eq!(
        kinds,
        vec![Some(5), Some(5), Some(5), Some(7), Some(13)],
        "{all:#?}"
    );
    assert!(matches!(all[0].problem, Problem::NotInCatalogue { .. }));
    assert!(matches!(all[1].problem, Problem::NotOffered { .. }));
    assert!(matches!(all[2].problem, Problem::DuplicateEvent { .. }));
    assert!(matches!(all[3].problem, Problem::SchemaUnreadable { .. }));
    assert_eq!(
        all[4].to_string(),
        "line 13: source \"y\": app \"zoom-pro\" is not an app of this deployment (its apps: \"zoom\", \"zoom-admin\")"
    );
}

#[test]
fn options_are_checked_against_the_shape() {
    let meeting = format!(
        "{}[source.options]\ninclude_audio = true\n",
        source_toml(r#"["meeting.started"]"#, "meeting.avsc")
    );
    let issue = one_issue(&meeting);
    assert_eq!(issue.line, Some(8));
    assert_eq!(
        issue.problem.to_string(),
        "unknown option \"include_audio\" for the Meeting shape (known: meeting_ids, hosted_by_me)"
    );
    let user = format!(
        "{}[source.options]\nmeeting_ids = [1]\n",
        source_toml(r#"["user.updated"]"#, "user.avsc")
    );
    assert!(one_issue(&user)
        .to_string()
        .ends_with("(the User shape takes no options)"));
    let recording = source_toml(r#"["recording.completed"]"#, "recording_file.avsc");
    let text = format!("{recording}[source.options]\ninclude_video = true\n");
    assert!(one_issue(&text).to_string().ends_with(
        "(known: include_audio, include_chat, file_types, meeting_ids, webinar_ids, hosted_by_me)"
    ));
    let text = format!("{recording}[source.options]\ninclude_chat = \"yes\"\n");
    assert!(matches!(
        one_issue(&text).problem,
        Problem::BadOption { .. }
    ));
    let text = format!("{recording}[source.options]\nfile_types = []\n");
    assert!(matches!(
        one_issue(&text).problem,
        Problem::BadOption { .. }
    ));
}

#[test]
fn schemas_are_checked() {
    let scratch = Scratch::new();
    let source = |schema: &str| source_toml(r#"["meeting.started"]"#, schema);
    scratch.write("broken.avsc", "{\"type\": \"record\"");
    let issue = parse(&source("broken.avsc"), scratch.0.path())
        .unwrap_err()
        .issues()[0]
        .clone();
    assert!(
        matches!(issue.problem, Problem::SchemaInvalid { .. }),
        "{issue}"
    );

    scratch.write(
        "other.avsc",
        r#"{"type": "record", "name": "Other", "namespace": "acme", "fields": []}"#,
    );
    let issue = parse(&source("other.avsc"), scratch.0.path())
        .unwrap_err()
        .issues()[0]
        .clone();
    assert!(
        issue
            .to_string()
            .contains("\"acme.Other\", which is not a zoomstream shape"),
        "{issue}"
    );

    scratch.write("string.avsc", "\"string\"");
    let issue = parse(&source("string.avsc"), scratch.0.path())
        .unwrap_err()
        .issues()[0]
        .clone();
    assert!(
        matches!(issue.problem, Problem::UnknownShape { .. }),
        "{issue}"
    );

    // An edited schema: a field dropped, one made nullable, one added with a default: fine.
    let edited = r#"{"type": "record", "name": "Meeting", "namespace": "zoomstream", "fields": [
        {"name": "event_id", "type": "string"},
        {"name": "meeting_id", "type": ["null", "string"], "default": null},
        {"name": "region", "type": "string", "default": "eu"}]}"#;
    scratch.write("edited.avsc", edited);
    assert!(parse(&source("edited.avsc"), scratch.0.path()).is_ok());

    // Wrong types and fields the shape cannot fill are rejected.
    let wrong = r#"{"type": "record", "name": "Meeting", "namespace": "zoomstream", "fields": [
        {"name": "event_ts", "type": "string"},
        {"name": "duration", "type": "string"},
        {"name": "region", "type": "string"},
        {"name": "topic", "type": ["null", "string", "long"]}]}"#;
    scratch.write("wrong.avsc", wrong);
    let err = parse(&source("wrong.avsc"), scratch.0.path()).unwrap_err();
    let fields: Vec<_> = err
        .issues()
        .iter()
        .map(|i| match &i.problem {
            Problem::SchemaField { field, .. } => field.as_str(),
            other => panic!("{other}"),
        })
        .collect();
    assert_eq!(fields, ["event_ts", "duration", "region", "topic"]);
    assert!(
        err.to_string()
            .contains("field \"event_ts\" is string, but the Meeting shape gives a timestamp"),
        "{err}"
    );
}

#[test]
fn structural_errors_come_from_toml_with_their_line() {
    let issue = one_issue("[[source]]\nname = \"a\"\nnmae = 1\n");
    assert_eq!(issue.line, Some(3), "{issue}");
    assert!(issue.to_string().contains("nmae"), "{issue}");
    let issue = one_issue("[[source]\n");
    assert!(matches!(issue.problem, Problem::Toml(_)));
    assert_eq!(issue.line, Some(1));
    assert_eq!(one_issue("").problem, Problem::NoSources);
    let text =
        "[[source]]\nname = \"s\"\napp = \"zoom\"\ntopic = \"t\"\nschema = \"meeting.avsc\"\n";
    assert_eq!(one_issue(text).problem, Problem::NoEvents);
}

#[test]
fn an_unreadable_file_is_its_own_error() {
    let err = load(Path::new("/nonexistent/sources.toml")).unwrap_err();
    assert!(matches!(err, SourcesError::Read { .. }));
    assert!(err
        .to_string()
        .starts_with("/nonexistent/sources.toml: cannot read the sources file"));
}

#[test]
fn a_source_names_an_app_of_the_apps_file_whose_kind_decides_its_events() {
    let apps = crate::Apps::parse(
        "[[app]]\nname = \"sales\"\nkind = \"zoom\"\nsecret_tokens_env = \"S\"\n\
         [[app]]\nname = \"corp\"\nkind = \"zoom-admin\"\nsecret_tokens_env = \"C\"\n",
        "apps.toml",
    )
    .unwrap();
    let source = |app: &str, event: &str| {
        format!(
            "[[source]]\nname = \"s\"\napp = \"{app}\"\nevents = [\"{event}\"]\ntopic = \"t\"\nschema = \"meeting.avsc\"\n"
        )
    };
    let file = super::parse_with(
        &source("sales", "meeting.created.by_me"),
        &shipped_dir(),
        &apps,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(file.sources[0].app.as_str(), "sales");
    assert_eq!(file.sources[0].app.kind(), crate::AppKind::Zoom);
    let file = super::parse_with(&source("corp", "meeting.started"), &shipped_dir(), &apps)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(file.sources[0].app.kind(), crate::AppKind::ZoomAdmin);

    let refused = |text: String| {
        super::parse_with(&text, &shipped_dir(), &apps)
            .unwrap_err()
            .to_string()
    };
    let e = refused(source("corp", "meeting.created.by_me"));
    assert!(
        e.contains(r#"not offered by the "corp" (Zoom Admin) app"#),
        "{e}"
    );
    let e = refused(source("zoom", "meeting.started"));
    assert!(
        e.contains(r#"app "zoom" is not an app of this deployment (its apps: "sales", "corp")"#),
        "{e}"
    );
}
