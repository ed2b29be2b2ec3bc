//! An app's secret tokens: the current one first, then older ones still accepted while Zoom
//! switches over, so rotating the secret drops no delivery. Given as one comma-separated value
//! (`ZOOMSTREAM_ZOOM_SECRET_TOKEN=new,old`); Zoom's tokens never contain commas.

use secrecy::SecretString;

/// One or more secret tokens, the current one first. Never printed.
#[derive(Clone)]
pub struct SecretTokens(Vec<SecretString>);

impl SecretTokens {
    /// The token Zoom signs with after a rotation, and the one `endpoint.url_validation` is
    /// answered with.
    pub fn current(&self) -> &SecretString {
        &self.0[0]
    }

    /// Every accepted token, the current one first.
    pub fn all(&self) -> &[SecretString] {
        &self.0
    }

    /// Parses `current[,old…]`; no token may be empty.
    pub fn parse(s: &str) -> Result<SecretTokens, String> {
        let tokens: Vec<SecretString> = s
            .split(',')
            .map(str::trim)
            .map(|t| {
                if t.is_empty() {
                    Err("a secret token is empty".to_owned())
                } else {
                    Ok(SecretString::from(t.to_owned()))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(SecretTokens(tokens))
    }
}

/// One token (embedding and tests): taken as it is, commas included.
impl From<SecretString> for SecretTokens {
    fn from(secret: SecretString) -> Self {
        SecretTokens(vec![secret])
    }
}

impl From<String> for SecretTokens {
    fn from(secret: String) -> Self {
        SecretTokens(vec![SecretString::from(secret)])
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn the_current_token_comes_first_and_none_may_be_empty() {
        let tokens = SecretTokens::parse("new, old1 ,old2").unwrap();
        let exposed: Vec<&str> = tokens.all().iter().map(|t| t.expose_secret()).collect();
        assert_eq!(exposed, ["new", "old1", "old2"]);
        assert_eq!(tokens.current().expose_secret(), "new");
        assert!(SecretTokens::parse("").is_err());
        assert!(SecretTokens::parse("new,").is_err());
        assert!(SecretTokens::parse(" ").is_err());
    }
}
