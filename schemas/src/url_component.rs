//! A value put into a URL as one component (a registry subject in a path, a download token in a
//! query): everything but RFC 3986's unreserved characters is percent-encoded.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn encode(text: &str) -> String {
    utf8_percent_encode(text, NOT_UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_unreserved_characters_stay() {
        assert_eq!(super::encode("a b/c+d"), "a%20b%2Fc%2Bd");
        assert_eq!(
            super::encode("zoom.meeting-created_1~"),
            "zoom.meeting-created_1~"
        );
        assert_eq!(super::encode("é"), "%C3%A9");
    }
}
