//! zoomstream's Parsing Canonical Forms and single-object fingerprints against fastavro's, for
//! every shipped schema and every version in `schemas/history/` (the vectors in
//! `fixtures/fingerprints.json` were computed by fastavro: `scripts/avro-vectors`).

use std::collections::BTreeSet;
use std::path::Path;

use apache_avro::Schema;
use serde_json::Value;
use zoomstream_schemas::avro::{self, SchemaVersions};

fn schemas_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn vectors() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(schemas_dir().join("tests/fixtures/fingerprints.json"))
        .expect("fixtures/fingerprints.json (scripts/avro-vectors writes it)");
    let vectors: Value = serde_json::from_str(&text).unwrap();
    vectors["schemas"].as_object().unwrap().clone()
}

/// Every `.avsc` shipped: `schemas/*.avsc` and `schemas/history/*/*.avsc`, relative to `schemas/`.
fn shipped_schema_files() -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    let mut add = |dir: &Path, prefix: &str| {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "avsc") {
                let name = path.file_name().unwrap().to_str().unwrap();
                files.insert(format!("{prefix}{name}"));
            }
        }
    };
    add(schemas_dir(), "");
    for entry in std::fs::read_dir(schemas_dir().join("history")).unwrap() {
        let folder = entry.unwrap().path();
        let stem = folder.file_name().unwrap().to_str().unwrap().to_owned();
        add(&folder, &format!("history/{stem}/"));
    }
    files
}

#[test]
fn every_shipped_schema_has_fastavros_canonical_form_and_fingerprint() {
    let vectors = vectors();
    let shipped = shipped_schema_files();
    let computed: BTreeSet<String> = vectors.keys().cloned().collect();
    assert_eq!(
        shipped, computed,
        "fingerprints.json is out of date: run scripts/avro-vectors"
    );
    for (file, expected) in &vectors {
        let text = std::fs::read_to_string(schemas_dir().join(file)).unwrap();
        let schema = Schema::parse_str(&text).unwrap();
        assert_eq!(
            avro::parsing_canonical_form(&schema),
            expected["canonical_form"].as_str().unwrap(),
            "{file}"
        );
        let fingerprint = hex::encode(avro::rabin_fingerprint(&schema));
        assert_eq!(
            fingerprint,
            expected["fingerprint"].as_str().unwrap(),
            "{file}"
        );
        let header = avro::single_object_header(&schema);
        assert_eq!(header[..2], avro::SINGLE_OBJECT_MAGIC);
        assert_eq!(hex::encode(&header[2..]), fingerprint, "{file}");
    }
}

#[test]
fn the_issue_reports_vector_for_recording_files_holds() {
    // The fingerprint fastavro and Java compute for recording_file.avsc as reported upstream:
    // its first release (v2 added file_json and object_json).
    let text =
        std::fs::read_to_string(schemas_dir().join("history/recording_file/v1.avsc")).unwrap();
    let schema = Schema::parse_str(&text).unwrap();
    assert_eq!(
        avro::rabin_fingerprint(&schema),
        [0x5a, 0xbf, 0x02, 0x47, 0x51, 0x7b, 0xd0, 0x9b]
    );
    // apache-avro 0.22's own: what zoomstream wrote before, still recognised by readers.
    assert_eq!(
        avro::legacy_fingerprint(&schema),
        [0x93, 0x9b, 0x9a, 0xee, 0xcf, 0x8b, 0x95, 0xd7]
    );
}

#[test]
fn every_shipped_schema_reads_what_its_released_versions_wrote() {
    for file in shipped_schema_files()
        .iter()
        .filter(|f| !f.starts_with("history/"))
    {
        let path = schemas_dir().join(file);
        let current = Schema::parse_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let versions = SchemaVersions::load(&path, current)
            .unwrap_or_else(|problems| panic!("{file}: {problems:?}"));
        assert!(
            versions.history().count() >= 1,
            "{file} has no released version in history/"
        );
        // The newest released version is the shipped schema, or an older one it can read.
        let newest = versions.history().last().unwrap().1;
        assert!(
            versions
                .by_fingerprint(&avro::rabin_fingerprint(newest))
                .is_some(),
            "{file}"
        );
    }
}
