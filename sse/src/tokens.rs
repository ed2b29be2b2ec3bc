//! Who may read which source: bearer tokens, compared in constant time.
//!
//! - A **global** token (`ZOOMSTREAM_SSE_TOKEN`, or `token` in the tokens file) opens every
//!   source that has no token of its own.
//! - A **per-source** token (`ZOOMSTREAM_SSE_SOURCE_TOKENS=name=token,…`, or the tokens file's
//!   `[sse.tokens]` table) opens that source only, and **overrides** the global token for it:
//!   once a source has its own tokens, the global one no longer opens it.
//! - Several tokens may open one source (rotation): every configured one is accepted.
//!
//! Only SHA-256 digests of the tokens are kept. A presented token is hashed and compared with
//! every candidate digest without early exit (`subtle`), so neither its content nor its length
//! shows in the timing. Tokens are never logged, nor echoed in errors.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::{Choice, ConstantTimeEq as _};
use zoomstream_schemas::sources::SourcesFile;

type TokenDigest = [u8; 32];

/// The digest a token is known by (quotas count streams per token by it; never logged).
pub fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

/// The tokens of every source.
pub struct Tokens {
    global: Vec<TokenDigest>,
    per_source: HashMap<String, Vec<TokenDigest>>,
}

/// Token settings that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "no SSE token configured: set ZOOMSTREAM_SSE_TOKEN (opens every source), \
         ZOOMSTREAM_SSE_SOURCE_TOKENS (name=token,… per source) or ZOOMSTREAM_SSE_TOKENS_FILE"
    )]
    NoToken,
    #[error("a token for {0} is empty")]
    Empty(String),
    #[error("tokens are given for {0:?}, which is not a source of the sources file")]
    UnknownSource(String),
    #[error("cannot read the tokens file {path}: {error}")]
    Read { path: String, error: std::io::Error },
    // The parser's own message may quote the file, and so a token: only the place is told.
    #[error(
        "the tokens file {path} is not valid (near line {line}); expected `[sse]` with an \
         optional `token = \"…\"` and a `[sse.tokens]` table of `source-name = \"…\"` or \
         `source-name = [\"…\", \"…\"]`"
    )]
    Parse { path: String, line: usize },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    sse: TokensSection,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensSection {
    token: Option<OneOrMany>,
    #[serde(default)]
    tokens: BTreeMap<String, OneOrMany>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

impl Tokens {
    /// Collects the tokens from the settings and the tokens file, checking each names a source.
    pub fn build(
        global: Option<&SecretString>,
        per_source: &[(String, SecretString)],
        file: Option<&Path>,
        sources: &SourcesFile,
    ) -> Result<Tokens, TokenError> {
        let mut tokens = Tokens {
            global: Vec::new(),
            per_source: HashMap::new(),
        };
        let mut add = |source: Option<&str>, token: &str| -> Result<(), TokenError> {
            if token.trim().is_empty() {
                return Err(TokenError::Empty(
                    source.map_or("every source".into(), |s| format!("source {s}")),
                ));
            }
            match source {
                None => tokens.global.push(digest(token)),
                Some(name) => {
                    if sources.get(name).is_none() {
                        return Err(TokenError::UnknownSource(name.to_owned()));
                    }
                    tokens
                        .per_source
                        .entry(name.to_owned())
                        .or_default()
                        .push(digest(token));
                }
            }
            Ok(())
        };
        if let Some(token) = global {
            add(None, token.expose_secret())?;
        }
        for (name, token) in per_source {
            add(Some(name), token.expose_secret())?;
        }
        if let Some(path) = file {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|error| TokenError::Read {
                path: shown.clone(),
                error,
            })?;
            let parsed: TokensFile = toml::from_str(&text).map_err(|err| TokenError::Parse {
                path: shown.clone(),
                line: err.span().map_or(1, |span| {
                    text.as_bytes()[..span.start.min(text.len())]
                        .iter()
                        .filter(|&&b| b == b'\n')
                        .count()
                        + 1
                }),
            })?;
            for token in parsed
                .sse
                .token
                .map(OneOrMany::into_vec)
                .unwrap_or_default()
            {
                add(None, &token)?;
            }
            for (name, list) in parsed.sse.tokens {
                for token in list.into_vec() {
                    add(Some(&name), &token)?;
                }
            }
        }
        if tokens.global.is_empty() && tokens.per_source.is_empty() {
            return Err(TokenError::NoToken);
        }
        Ok(tokens)
    }

    /// Whether `presented` opens `source`. Constant time in the token's content and length.
    pub fn allows(&self, source: &str, presented: &str) -> bool {
        let candidates = self.per_source.get(source).unwrap_or(&self.global);
        let presented = digest(presented);
        let mut ok = Choice::from(0);
        for candidate in candidates {
            ok |= candidate.ct_eq(&presented);
        }
        bool::from(ok)
    }

    /// Sources no token opens (no global token, none of their own): always 401.
    pub fn closed<'a>(&self, sources: &'a SourcesFile) -> Vec<&'a str> {
        if !self.global.is_empty() {
            return Vec::new();
        }
        sources
            .sources
            .iter()
            .filter(|s| !self.per_source.contains_key(&s.name))
            .map(|s| s.name.as_str())
            .collect()
    }

    /// How many sources have tokens of their own (for the start-up log; never the tokens).
    pub fn per_source_count(&self) -> usize {
        self.per_source.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zoomstream_schemas::sources;

    fn sources() -> SourcesFile {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        sources::parse(
            r#"
[[source]]
name = "a"
app = "zoom"
events = ["meeting.started"]
topic = "t.a"
schema = "meeting.avsc"

[[source]]
name = "b"
app = "zoom"
events = ["meeting.ended"]
topic = "t.b"
schema = "meeting.avsc"
"#,
            &dir,
        )
        .expect("test sources")
    }

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn per_source_tokens_override_the_global_one() {
        let sources = sources();
        let tokens = Tokens::build(
            Some(&secret("global")),
            &[("b".into(), secret("bee"))],
            None,
            &sources,
        )
        .unwrap();
        assert!(tokens.allows("a", "global"));
        assert!(!tokens.allows("a", "bee"));
        assert!(tokens.allows("b", "bee"));
        assert!(!tokens.allows("b", "global"), "b has its own token");
        assert!(!tokens.allows("a", ""));
        assert!(!tokens.allows("a", "globa"));
        assert!(tokens.closed(&sources).is_empty());
    }

    #[test]
    fn the_tokens_file_adds_global_and_rotated_tokens() {
        let sources = sources();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        std::fs::write(
            &path,
            "[sse]\ntoken = \"g\"\n[sse.tokens]\na = [\"old\", \"new\"]\n",
        )
        .unwrap();
        let tokens = Tokens::build(None, &[], Some(&path), &sources).unwrap();
        assert!(tokens.allows("a", "old") && tokens.allows("a", "new") && !tokens.allows("a", "g"));
        assert!(tokens.allows("b", "g"));

        std::fs::write(&path, "[sse.tokens]\nb = \"only-b\"\n").unwrap();
        let tokens = Tokens::build(None, &[], Some(&path), &sources).unwrap();
        assert_eq!(tokens.closed(&sources), vec!["a"]);
        assert!(!tokens.allows("a", "only-b"));

        std::fs::write(&path, "[sse.tokens]\nnope = \"s3cr3t-value\"\n").unwrap();
        let err = Tokens::build(None, &[], Some(&path), &sources)
            .err()
            .unwrap();
        assert!(
            matches!(err, TokenError::UnknownSource(ref n) if n == "nope"),
            "{err}"
        );

        std::fs::write(&path, "[sse]\ntoken = \"s3cr3t-value\"\nextra = 1\n").unwrap();
        let err = Tokens::build(None, &[], Some(&path), &sources)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("line 3") && !err.contains("s3cr3t"), "{err}");
    }

    #[test]
    fn no_token_at_all_does_not_start() {
        let err = Tokens::build(None, &[], None, &sources()).err().unwrap();
        assert!(matches!(err, TokenError::NoToken));
        let err = Tokens::build(Some(&secret(" ")), &[], None, &sources())
            .err()
            .unwrap();
        assert!(matches!(err, TokenError::Empty(_)));
    }
}
