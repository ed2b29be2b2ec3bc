//! The configs of the topics the services create, per kind: documented defaults, overridden by
//! the operator's `--<kind>-topic-config k=v` flags. Applied only when a topic is created; an
//! existing topic keeps its configs (change them with `kafka-configs.sh --alter`).

use std::collections::BTreeMap;

/// The raw topic is the system of record that backfill replays: kept for ever unless bounded.
pub const RAW_DEFAULTS: &[(&str, &str)] = &[("retention.ms", "-1")];

/// Source topics can be rebuilt from the raw topic (backfill): Kafka's usual week.
pub const SOURCE_DEFAULTS: &[(&str, &str)] = &[("retention.ms", "604800000")];

/// Dead letters wait for a person to look at them: 30 days.
pub const DLQ_DEFAULTS: &[(&str, &str)] = &[("retention.ms", "2592000000")];

/// `defaults`, then `required` (e.g. `max.message.bytes`), then the operator's `overrides`,
/// each later one winning for a key.
pub fn merged(
    defaults: &[(&str, &str)],
    required: &[(String, String)],
    overrides: &[(String, String)],
) -> Vec<(String, String)> {
    let mut configs: BTreeMap<String, String> = defaults
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    configs.extend(required.iter().cloned());
    configs.extend(overrides.iter().cloned());
    configs.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_win_over_required_over_defaults() {
        let required = vec![("max.message.bytes".to_owned(), "5".to_owned())];
        assert_eq!(
            merged(RAW_DEFAULTS, &required, &[]),
            vec![
                ("max.message.bytes".to_owned(), "5".to_owned()),
                ("retention.ms".to_owned(), "-1".to_owned()),
            ]
        );
        let overrides = vec![
            ("retention.ms".to_owned(), "86400000".to_owned()),
            ("cleanup.policy".to_owned(), "delete".to_owned()),
        ];
        assert_eq!(
            merged(RAW_DEFAULTS, &required, &overrides),
            vec![
                ("cleanup.policy".to_owned(), "delete".to_owned()),
                ("max.message.bytes".to_owned(), "5".to_owned()),
                ("retention.ms".to_owned(), "86400000".to_owned()),
            ]
        );
    }
}
